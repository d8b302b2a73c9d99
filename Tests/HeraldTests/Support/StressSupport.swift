import Foundation
import Herald
import Logging
import Synchronization

extension WorkerFixture {
    /// The fixture (table `items`, trigger `items_hook`) with `beforeInstall` SQL run before
    /// the triggers are installed, so `extraTrigger` can name tables the test creates there.
    init(
        webhook: String, retry: String = "{num_retries: 0, interval_sec: 0, timeout_sec: 5}", worker: String = "",
        extraTrigger: String, beforeInstall: String
    ) throws {
        database = try TestDatabase()
        connection = try database.connect()
        try connection.execute(script: "CREATE TABLE items (id serial PRIMARY KEY, name text)")
        if !beforeInstall.isEmpty { try connection.execute(script: beforeInstall) }
        let yaml = workerConfigYAML(
            databaseURL: database.url, webhook: webhook, retry: retry, worker: worker, extraTrigger: extraTrigger)
        configPath = try temporaryFile(yaml)
        config = try ConfigLoader.parse(yaml: yaml, file: configPath, environment: [:])
        try TriggerInstaller(config: config, logger: Logger(label: "test")).install(connection)
    }

    /// SQL creating the table `other` that ``otherTrigger(webhook:retry:)`` captures.
    static let createOtherTable = "CREATE TABLE other (id serial PRIMARY KEY, name text)"

    /// `extraTrigger` YAML for a trigger `other_hook` on the table `other` (insert only).
    static func otherTrigger(webhook: String, retry: String = "{num_retries: 0, interval_sec: 0, timeout_sec: 5}")
        -> String
    {
        """
          - table: {schema: public, name: other}
            event_triggers:
              - name: other_hook
                definition: {insert: {columns: "*"}}
                retry_conf: \(retry)
                webhook: \(webhook)
        """
    }

    /// Inserts `count` rows into `other` in one statement.
    func insertOther(_ count: Int) throws {
        try connection.query(
            "INSERT INTO other (name) SELECT 'other ' || g FROM generate_series(1, $1::int) g", [String(count)])
    }

    /// Makes the next event ids large and unmistakable in a log (the first is `after + 1`).
    func bumpEventIDs(after: Int64) throws {
        try connection.query(
            "SELECT setval(pg_get_serial_sequence('herald.event_log', 'id'), $1::bigint)", [String(after)])
    }
}

extension WorkerProcess {
    /// Waits until the worker is ready: `/readyz` answers 200 (its claimer connected and
    /// LISTENs) for a worker started with `readiness: true`, else its start line. False if
    /// that did not come (or the worker exited).
    func waitUntilStarted(timeout: Double = 20) -> Bool {
        guard let readinessURL else {
            return eventually(timeout: timeout) { log.contains("herald worker started") || !process.isRunning }
                && log.contains("herald worker started")
        }
        func ready() -> Bool { (try? httpGet(readinessURL).status) == 200 }
        return eventually(timeout: timeout) { ready() || !process.isRunning } && process.isRunning && ready()
    }

    /// The log without per-delivery debug lines, at most the last 100 lines: what a failure
    /// message needs, without thousands of "delivery attempt finished".
    var logExcerpt: String {
        let lines = log.split(separator: "\n").filter { !$0.contains("delivery attempt finished") }
        return (lines.count > 100 ? ["…"] + lines.suffix(100) : lines).joined(separator: "\n")
    }

    /// Log lines containing every one of `fragments`.
    func logLines(containing fragments: String...) -> [Substring] {
        log.split(separator: "\n").filter { line in fragments.allSatisfy { line.contains($0) } }
    }
}

extension Receiver {
    /// The `webhook-id` of every request received, in arrival order.
    func webhookIDs() throws -> [String] {
        try requests().compactMap { $0.header("webhook-id") }
    }
}

/// Seconds since `start`.
func secondsSince(_ start: Date) -> Double { Date().timeIntervalSince(start) }

/// Reads every datagram arriving on a ``NotifySocket`` on a thread of its own and keeps it
/// with its arrival time, so a test can ask what systemd would have seen in a time window.
final class DatagramCollector: @unchecked Sendable {
    struct Datagram: Sendable {
        var time: Date
        var text: String
    }

    private let socket: NotifySocket
    private let state = Mutex<(received: [Datagram], stopping: Bool)>(([], false))
    private let finished = DispatchSemaphore(value: 0)

    init(socket: NotifySocket) {
        self.socket = socket
        // A short receive timeout, so the reading thread notices stop() quickly.
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(socket.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread.detachNewThread { [self] in
            while !state.withLock({ $0.stopping }) {
                if let text = self.socket.receive() {
                    let datagram = Datagram(time: Date(), text: text)
                    state.withLock { $0.received.append(datagram) }
                }
            }
            finished.signal()
        }
    }

    /// Stops the reading thread and waits for it (call before the socket goes away).
    func stop() {
        let already = state.withLock { state in
            defer { state.stopping = true }
            return state.stopping
        }
        if !already { finished.wait() }
    }

    var all: [Datagram] { state.withLock { $0.received } }

    /// Datagrams that arrived between `start` and `end`.
    func received(from start: Date, to end: Date) -> [Datagram] {
        all.filter { $0.time >= start && $0.time <= end }
    }
}

/// A login role of the test's own (roles are cluster-wide: the name is unique and the role
/// is dropped by ``drop()``), with the rights a worker needs on one test database.
final class TemporaryRole: @unchecked Sendable {
    let name: String
    /// The test database's URL with this role as the user (trust authentication).
    let url: String
    private let database: TestDatabase
    private var dropped = false

    init(database: TestDatabase) throws {
        self.database = database
        name = "herald_role_\(UUID().uuidString.prefix(8).lowercased())"
        var components = URLComponents(string: database.url)
        components?.user = name
        components?.password = nil
        url = components?.string ?? database.url
        try database.connect().execute(
            script: """
                CREATE ROLE \(name) LOGIN;
                GRANT USAGE ON SCHEMA herald TO \(name);
                GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA herald TO \(name);
                GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA herald TO \(name);
                GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA herald TO \(name);
                """)
    }

    deinit { drop() }

    /// Ends the role's sessions, revokes its rights and drops it. Safe to call twice.
    func drop() {
        guard !dropped else { return }
        dropped = true
        if let connection = try? database.connect() {
            _ = try? connection.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [name])
            try? connection.execute(script: "DROP OWNED BY \(name)")
        }
        if let adminURL = TestEnvironment.databaseURL, let admin = try? PGConnection(url: adminURL) {
            try? admin.execute(script: "DROP ROLE IF EXISTS \(name)")
        }
    }
}

extension TestDatabase {
    /// Transactions committed plus rolled back in this database so far, as the statistics
    /// system reports them (a backend reports at most once a second while busy, and when it
    /// exits).
    func transactionCount() throws -> Int {
        Int(
            try values(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
            ).first.flatMap { $0 } ?? "") ?? -1
    }
}
