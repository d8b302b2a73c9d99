import Foundation
import Testing

@testable import Herald

@Suite("Security: names and escaping")
struct SecurityUnitTests {
    @Test(arguments: ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "127.255.255.255", "::1"])
    func loopbackNamesAreLoopback(host: String) {
        #expect(LoopbackName.isLoopback(host: host))
    }

    @Test(arguments: [
        "127.0.0.1.evil.example", "127.evil.example", "127.0.0.1x", "127.0.0", "127.0.0.256", "128.0.0.1", "0127.0.0.1",
        "localhost.evil.example", "evil-localhost", "", "::2", "127.0.0.1:80",
    ])
    func namesThatOnlyLookLikeLoopbackAreNot(host: String) {
        #expect(!LoopbackName.isLoopback(host: host))
    }

    @Test func consoleHostCheckTakesExactLoopbackNamesOnly() {
        #expect(ConsoleAuth.isLoopbackHost("127.0.0.1:9464"))
        #expect(ConsoleAuth.isLoopbackHost("[::1]:9464"))
        #expect(ConsoleAuth.isLoopbackHost("localhost:9464"))
        #expect(!ConsoleAuth.isLoopbackHost("127.0.0.1.evil.example:9464"))
        #expect(!StatsListenAddress("127.0.0.1.evil.example:9464")!.isLoopback)
    }

    @Test(arguments: [
        "\u{22}\u{301} autofocus onfocus=alert(1)", "\u{27}\u{308}x", "\u{3C}\u{338}script>", "&\u{300}amp;", "a\u{22}b'c<d>e&f",
    ])
    func escapingLeavesNoQuoteOrBracketEvenWithCombiningMarks(input: String) {
        let escaped = Markup.escape(input)
        #expect(!escaped.unicodeScalars.contains { ["\u{22}", "\u{27}", "\u{3C}", "\u{3E}"].contains($0) })
        // Every ampersand starts an entity (compared by scalars: a combining mark after the
        // entity's ';' would make one Character of the two).
        let entities = ["amp;", "lt;", "gt;", "quot;", "#39;"].map { Array($0.unicodeScalars) }
        let pieces = escaped.unicodeScalars.split(separator: "&", omittingEmptySubsequences: false).dropFirst()
        #expect(pieces.allSatisfy { piece in entities.contains { piece.starts(with: $0) } })
    }

    // MARK: !include stays inside the configuration's directory

    /// A config in its own folder and a table file beside that folder.
    func layout(_ config: (String) -> String) throws -> (config: String, outside: String) {
        let base = NSTemporaryDirectory() + "herald-include-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base + "/conf", withIntermediateDirectories: true)
        let outside = base + "/outside.yaml"
        try """
            - table: {schema: public, name: orders}
              event_triggers:
                - {name: t, definition: {insert: {columns: "*"}}, webhook: "http://127.0.0.1:9/x"}
            """.write(toFile: outside, atomically: true, encoding: .utf8)
        let path = base + "/conf/herald.yaml"
        try config(outside).write(toFile: path, atomically: true, encoding: .utf8)
        return (path, outside)
    }

    @Test(arguments: ["../outside.yaml", "ABSOLUTE"])
    func includesMayNotLeaveTheConfigurationsDirectory(target: String) throws {
        let (path, _) = try layout { outside in
            "database: {url: 'postgres://a@127.0.0.1/a'}\ntables: \"!include \(target == "ABSOLUTE" ? outside : target)\"\n"
        }
        do {
            _ = try ConfigLoader.load(path: path, environment: [:])
            Issue.record("an include outside the directory loaded")
        } catch {
            #expect(error.description.contains("leaves"))
            #expect(error.description.contains("include_outside_directory"))
        }
    }

    @Test func theConfigurationMayAllowIncludesAnywhere() throws {
        let (path, _) = try layout { _ in
            "include_outside_directory: true\ndatabase: {url: 'postgres://a@127.0.0.1/a'}\ntables: \"!include ../outside.yaml\"\n"
        }
        let config = try ConfigLoader.load(path: path, environment: [:])
        #expect(config.trigger(named: "t") != nil)
    }
}
