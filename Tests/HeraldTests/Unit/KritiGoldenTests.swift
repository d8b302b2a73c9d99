import Foundation
import Testing

@testable import Herald

/// kriti-lang's own golden examples (Fixtures/kriti, provenance in its README), run as
/// kriti-lang's test harness runs them: the source JSON bound to `$`.
@Suite("Kriti golden examples")
struct KritiGoldenTests {
    static let directory = Fixtures.path("kriti")

    static func names(in folder: String, extension suffix: String) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/\(folder)")) ?? []
        return entries.filter { $0.hasSuffix(".\(suffix)") }.map { String($0.dropLast(suffix.count + 1)) }.sorted()
    }

    static func read(_ relative: String) throws -> String {
        try String(contentsOfFile: "\(directory)/\(relative)", encoding: .utf8)
    }

    static let evaluationExamples = names(in: "eval", extension: "kriti")
    static let parseExamples = names(in: "parse-success", extension: "kriti")
    static let failureExamples = names(in: "parse-failure", extension: "kriti")

    @Test func everyFixtureFolderHasExamples() {
        #expect(Self.evaluationExamples.count == 27)
        #expect(Self.parseExamples.count == 10)
        #expect(Self.failureExamples.count == 4)
    }

    @Test(arguments: evaluationExamples)
    func evaluatesToTheGoldenOutput(_ name: String) throws {
        let source = try KritiValue(json: try Self.read("eval/source.json"))
        let expected = try KritiValue(json: try Self.read("eval/\(name).json"))
        let template = try KritiTemplate(try Self.read("eval/\(name).kriti"))
        #expect(try template.evaluate(["$": source]) == expected)
    }

    @Test(arguments: parseExamples)
    func parses(_ name: String) throws {
        _ = try KritiTemplate(try Self.read("parse-success/\(name).kriti"))
    }

    @Test(arguments: failureExamples)
    func failsToParse(_ name: String) throws {
        let text = try Self.read("parse-failure/\(name).kriti")
        let error = #expect(throws: KritiError.self) { try KritiTemplate(text) }
        #expect(error?.isParseError == true)
    }

    @Test func parseFailuresNameTheOffendingTokenWhereItStands() throws {
        let cases: [(file: String, message: String, line: Int, column: Int)] = [
            ("example3", "Unexpected token 'True'.", 1, 2),
            ("numAsKey", "Unexpected token '1'.", 1, 2),
            ("missingClosingBracket", "Unexpected token '}'.", 1, 11),
            ("trailingCommaInArray", "Unexpected token ']'.", 1, 8),
        ]
        for expected in cases {
            let text = try Self.read("parse-failure/\(expected.file).kriti")
            do {
                _ = try KritiTemplate(text)
                Issue.record("\(expected.file) parsed")
            } catch {
                #expect(error.code == .parseError, "\(expected.file)")
                #expect(error.message == expected.message, "\(expected.file)")
                #expect(error.line == expected.line && error.column == expected.column, "\(expected.file): \(error)")
            }
        }
    }
}
