import Foundation
import Logging

@testable import Herald

/// A database seeded for the console tests, with a worker (`herald run`, stats listener with
/// a token, console on) delivering to a real receiver:
///
/// - `order_changes` (orders INSERT) → `/flaky/1` with no retries: every event fails once,
///   and a redelivery succeeds. It sends a literal `Authorization` header, which must never
///   be shown.
/// - `order_audit` (orders INSERT) → `/ok`: every event is delivered.
/// - two pending events of `legacy_hook`, a trigger no longer configured.
///
/// Orders 1…5 belong to customers acme (1, 3, 5) and globex (2, 4); order 6 carries a
/// `<script>` note.
final class ConsoleFixture: @unchecked Sendable {
    static let token = "console-t0ken-\(UUID().uuidString.prefix(8))"
    static let literalSecret = "literal-authorization-secret"
    static let orders = 6

    let database: TestDatabase
    let receiver: Receiver
    let worker: WorkerProcess
    let port: Int
    let configPath: String
    var baseURL: String { "http://127.0.0.1:\(port)" }

    init(console: String = "{}") throws {
        database = try TestDatabase()
        receiver = try Receiver()
        let connection = try database.connect()
        try connection.execute(
            script: "CREATE TABLE orders (id integer PRIMARY KEY, customer text NOT NULL, note text)")
        port = try freePort()
        let yaml = """
            database: {url: '\(database.url)'}
            worker: {fetch_interval_ms: 100, recorder_flush_interval_ms: 5, lease_seconds: 30}
            stats: {listen: '127.0.0.1:\(port)', bearer_token_env: CONSOLE_TOKEN}
            console: \(console)
            tables:
              - table: {schema: public, name: orders}
                event_triggers:
                  - name: order_changes
                    definition: {insert: {columns: "*"}, enable_manual: true}
                    retry_conf: {num_retries: 0, interval_sec: 0, timeout_sec: 5}
                    webhook: \(receiver.url("/flaky/1"))
                    headers:
                      - {name: Authorization, value: "Bearer \(Self.literalSecret)"}
                  - name: order_audit
                    definition: {insert: {columns: "*"}}
                    retry_conf: {num_retries: 0, interval_sec: 0, timeout_sec: 5}
                    webhook: \(receiver.url("/ok"))
            """
        configPath = try temporaryFile(yaml)
        let environment = ["CONSOLE_TOKEN": Self.token]
        let config = try ConfigLoader.parse(yaml: yaml, file: configPath, environment: environment)
        try TriggerInstaller(config: config, logger: Logger(label: "test")).install(connection)
        try connection.execute(
            script: """
                INSERT INTO orders VALUES (1, 'acme', 'first'), (2, 'globex', NULL), (3, 'acme', NULL),
                  (4, 'globex', NULL), (5, 'acme', NULL), (6, 'initech', '<script>alert("xss")</script>');
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload)
                SELECT 'legacy_hook', 'public', 'orders',
                       jsonb_build_object('op', 'MANUAL', 'data', jsonb_build_object('old', NULL, 'new', jsonb_build_object('id', g)))
                FROM generate_series(100, 101) g;
                """)
        worker = try WorkerProcess(configPath: configPath, environment: environment)
        let done = eventually(timeout: 30) {
            (try? connection.query(
                "SELECT count(*) FROM herald.event_log WHERE status <> 'pending' AND trigger_name <> 'legacy_hook'")[0, 0])
                == String(2 * Self.orders)
        }
        guard done else { throw ReceiverError(message: "seeded events were not processed: \(worker.log)") }
    }

    /// The payload UUID of order `id`'s event of `trigger`.
    func eventID(order id: Int, trigger: String = "order_changes") throws -> String {
        let connection = try database.connect()
        let number = try connection.query(
            "SELECT id FROM herald.event_log WHERE trigger_name = $1 AND payload->'data'->'new'->>'id' = $2",
            [trigger, String(id)])[0, 0]
        let key = try EventStore(connection: connection).eventIDKey()
        return EventID.uuid(key: key, number: Int64(number ?? "") ?? 0)
    }
}
