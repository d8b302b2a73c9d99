import Foundation
import Herald
import Testing

/// Where integration tests find PostgreSQL: `scripts/test` starts a throwaway server and
/// exports its URL. Without it they are skipped on a developer's machine, but under CI they
/// run and fail, so a broken setup can never pass as "no tests ran".
enum TestEnvironment {
    static let variables = ProcessInfo.processInfo.environment
    static var databaseURL: String? { variables["HERALD_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 } }
    static var integrationEnabled: Bool {
        databaseURL != nil || variables["CI"] == "true" || variables["HERALD_INTEGRATION"] == "1"
    }

    /// The `herald` executable built next to the test bundle.
    static var heraldExecutable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("herald")
    }
}

struct MissingTestDatabase: Error, CustomStringConvertible {
    var description: String {
        "HERALD_TEST_DATABASE_URL is not set: run the tests through scripts/test, which starts PostgreSQL"
    }
}

/// A database of its own for one test, so tests run in parallel without seeing each
/// other's triggers. Dropped when the value goes away.
final class TestDatabase: @unchecked Sendable {
    let name: String
    let url: String
    private let adminURL: String

    init() throws {
        guard let adminURL = TestEnvironment.databaseURL else { throw MissingTestDatabase() }
        self.adminURL = adminURL
        name = "herald_test_\(UUID().uuidString.prefix(8).lowercased())"
        var components = URLComponents(string: adminURL)
        components?.path = "/\(name)"
        url = components?.string ?? adminURL
        let admin = try PGConnection(url: adminURL)
        try admin.execute(script: "CREATE DATABASE \(name)")
    }

    deinit {
        if let admin = try? PGConnection(url: adminURL) {
            try? admin.execute(script: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        }
    }

    func connect() throws -> PGConnection {
        try PGConnection(url: url)
    }

    /// Runs SQL and returns the first column of every row.
    @discardableResult
    func values(_ sql: String, _ parameters: [String?] = []) throws -> [String?] {
        try connect().query(sql, parameters).column(0)
    }

    /// Runs SQL and returns every column of its first row (empty when there is none).
    func firstRow(_ sql: String, _ parameters: [String?] = []) throws -> [String?] {
        let result = try connect().query(sql, parameters)
        guard result.rowCount > 0 else { return [] }
        return (0..<result.columnCount).map { result[0, $0] }
    }

    /// A config with this database's URL and the given `tables:` YAML.
    func config(tables: String, environment: [String: String] = [:]) throws -> HeraldConfig {
        try ConfigLoader.parse(
            yaml: "database: {url: '\(url)'}\ntables:\n\(tables)", file: "test.yaml", environment: environment)
    }
}
