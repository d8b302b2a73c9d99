import Foundation
import Herald
import Logging

/// A database of its own with an `items` table and Herald's triggers installed from a
/// generated config file, ready for `herald run` and the other commands.
struct WorkerFixture {
    let database: TestDatabase
    let connection: PGConnection
    let configPath: String
    let config: HeraldConfig

    init(
        webhook: String, retry: String = "{num_retries: 0, interval_sec: 0, timeout_sec: 5}", worker: String = "",
        environment: [String: String] = [:], extraTrigger: String = "", manual: Bool = true
    ) throws {
        database = try TestDatabase()
        connection = try database.connect()
        try connection.execute(script: "CREATE TABLE items (id serial PRIMARY KEY, name text)")
        var yaml = workerConfigYAML(
            databaseURL: database.url, webhook: webhook, retry: retry, worker: worker, extraTrigger: extraTrigger)
        if !manual { yaml = yaml.replacingOccurrences(of: "enable_manual: true", with: "enable_manual: false") }
        configPath = try temporaryFile(yaml)
        config = try ConfigLoader.parse(yaml: yaml, file: configPath, environment: environment)
        try TriggerInstaller(config: config, logger: Logger(label: "test")).install(connection)
    }

    func insert(_ count: Int) throws {
        try connection.query(
            "INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, $1::int) g", [String(count)])
    }

    /// Events matching a SQL condition.
    func count(_ condition: String) throws -> Int {
        Int(try connection.query("SELECT count(*) FROM herald.event_log WHERE \(condition)")[0, 0] ?? "") ?? -1
    }

    func invocations() throws -> [(attempt: Int, status: Int?, errorClass: String?, body: String?)] {
        let result = try connection.query(
            "SELECT attempt, status_code, error_class, response_body FROM herald.invocation_log ORDER BY id")
        return (0..<result.rowCount).map {
            (Int(result[$0, 0] ?? "") ?? 0, result[$0, 1].flatMap(Int.init), result[$0, 2], result[$0, 3])
        }
    }
}
