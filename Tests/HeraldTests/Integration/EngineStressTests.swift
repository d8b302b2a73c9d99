import Foundation
import Logging
import Testing

@testable import Herald

/// The engine under load and under faults: each test reproduces one situation the first
/// engine handled badly (a pool waiting on the poll interval, one slow host holding back
/// the others, queued jobs outliving their lease, an event deleted in flight wedging the
/// recorder, a failing query retried in a tight loop, watchdog pings stopping while the
/// database is down, shutdown taking the grace twice) and asserts the fixed behaviour.
/// Real PostgreSQL, real receivers, `herald run` as a child process.
///
/// Bounds are generous for a 2-core machine running other suites at the same time, yet each
/// sits well inside what the first engine measured, so none can pass by accident.
@Suite("Engine under stress", .enabled(if: TestEnvironment.integrationEnabled))
struct EngineStressTests {
    /// With a claim larger than the pool, the first engine claimed a batch, started 16, and
    /// then slept out the poll interval before it claimed again (~8 s for these 2000, ~250
    /// events/s). The pool must stay busy: the claimer tops it up as slots free, whatever the
    /// poll interval. (/fast, not /ok: /ok's Nagle delay caps 16 connections near 360/s.)
    @Test func batchLargerThanPoolKeepsThePoolBusy() throws {
        let receiver = try Receiver()
        let setup = try WorkerFixture(
            webhook: receiver.url("/fast"), worker: "fetch_batch_size: 200, http_pool_size: 16, fetch_interval_ms: 1000")
        try setup.insert(2000)
        let worker = try WorkerProcess(configPath: setup.configPath, readiness: true)
        try #require(worker.waitUntilStarted(), "\(worker.logExcerpt)")
        let started = Date()
        let drained = try eventually(timeout: 20) { try setup.count("status = 'delivered'") == 2000 }
        let seconds = secondsSince(started)
        #expect(drained, "\((try? setup.count("status = 'delivered'")) ?? -1) of 2000 delivered in 20 s")
        // > 400 events/s; the first engine took ~8 s.
        #expect(seconds < 5, "2000 events took \(String(format: "%.1f", seconds)) s (\(Int(2000 / seconds))/s)")
        let ids = try receiver.webhookIDs()
        #expect(ids.count == 2000)
        #expect(Set(ids).count == 2000)
        #expect(worker.terminate() == 0)
    }

    /// Host A answers in 2 s with 4 requests at a time (2 events/s); host B answers at once.
    /// The first engine claimed A's backlog first, filled its queue with jobs waiting for A's
    /// per-host slots and claimed nothing else: B waited minutes behind A.
    @Test func slowHostDoesNotDelayAnotherHost() throws {
        let slow = try Receiver()
        let fast = try Receiver()
        let setup = try WorkerFixture(
            webhook: slow.url("/sleep/2000"), retry: "{num_retries: 0, interval_sec: 0, timeout_sec: 5}",
            worker: "http_per_host_limit: 4, lease_seconds: 60, shutdown_grace_seconds: 5",
            extraTrigger: WorkerFixture.otherTrigger(webhook: fast.url("/fast")),
            beforeInstall: WorkerFixture.createOtherTable)
        // A's events are older, so a claim in due order meets them first.
        try setup.insert(400)
        try setup.insertOther(300)
        let worker = try WorkerProcess(configPath: setup.configPath, readiness: true)
        try #require(worker.waitUntilStarted(), "\(worker.logExcerpt)")
        let arrived = try eventually(timeout: 10) { try fast.stats().count >= 300 }
        #expect(arrived, "host B got \((try? fast.stats().count) ?? -1) of 300 events in 10 s behind slow host A")
        // A is still slow: at 2 events/s it cannot have had its 400.
        #expect(try slow.stats().count < 400)
        let ids = try fast.webhookIDs()
        #expect(ids.count == 300)
        #expect(Set(ids).count == 300)
        #expect(
            try eventually(timeout: 10) { try setup.count("trigger_name = 'other_hook' AND status = 'delivered'") == 300 },
            "\(worker.logExcerpt)")
        #expect(try slow.stats().max_concurrency <= 4)
        #expect(worker.terminate() == 0)
    }

    /// 80 events at 4 concurrent requests of 0.5 s take ~10 s, against a 3 s lease. The
    /// first engine claimed all 80 at once; those still queued when their lease ran out were
    /// claimed again by the same worker and sent twice, with no crash anywhere. A job must
    /// never be sent once its lease cannot cover the request.
    @Test func queuedJobsNeverOutliveTheirLease() throws {
        let receiver = try Receiver()
        let setup = try WorkerFixture(
            webhook: receiver.url("/sleep/500"), retry: "{num_retries: 3, interval_sec: 0, timeout_sec: 1}",
            worker: "http_per_host_limit: 4, lease_seconds: 3")
        try setup.insert(80)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually(timeout: 30) { try setup.count("status = 'delivered'") == 80 }, "\(worker.logExcerpt)")
        // Duplicates queued behind the originals arrive right after them: give them time.
        Thread.sleep(forTimeInterval: 2)
        let ids = try receiver.webhookIDs()
        let sentTwice = Dictionary(ids.map { ($0, 1) }, uniquingKeysWith: +).filter { $0.value > 1 }.count
        #expect(Set(ids).count == 80)
        #expect(ids.count == 80, "\(ids.count) requests for 80 events; \(sentTwice) events sent more than once")
        #expect(try setup.invocations().count == 80)
        #expect(worker.terminate() == 0)
    }

    /// An operator deletes an event while its request is in flight. The first engine's
    /// recorder then failed on the invocation row's foreign key, retried that batch forever
    /// and recorded nothing after it. The outcome of a vanished event must be dropped with a
    /// log line that names it, and later outcomes recorded as usual.
    @Test func eventDeletedInFlightDoesNotBlockLaterOnes() throws {
        let receiver = try Receiver()
        let setup = try WorkerFixture(
            webhook: receiver.url("/sleep/1500"), worker: "shutdown_grace_seconds: 5",
            extraTrigger: WorkerFixture.otherTrigger(webhook: receiver.url("/ok")),
            beforeInstall: WorkerFixture.createOtherTable)
        // An id that cannot be mistaken for anything else in the log.
        try setup.bumpEventIDs(after: 987_654)
        let worker = try WorkerProcess(configPath: setup.configPath, readiness: true)
        try #require(worker.waitUntilStarted(), "\(worker.logExcerpt)")
        try setup.insert(1)
        let deletedID = try #require(try setup.connection.query("SELECT id FROM herald.event_log")[0, 0])
        try #require(try eventually { try receiver.stats().count >= 1 }, "\(worker.logExcerpt)")
        let webhookID = try receiver.webhookIDs().first ?? "none"
        try setup.connection.execute(script: "DELETE FROM herald.event_log WHERE id = \(deletedID)")
        // Let the slow request answer while its event is gone; only then the next work.
        Thread.sleep(forTimeInterval: 2)
        try setup.insertOther(200)
        let delivered = try eventually(timeout: 15) {
            try setup.count("trigger_name = 'other_hook' AND status = 'delivered'") == 200
        }
        #expect(
            delivered,
            "\((try? setup.count("trigger_name = 'other_hook' AND status = 'delivered'")) ?? -1) of 200 later events recorded\n\(worker.logExcerpt)"
        )
        #expect(eventually(timeout: 5) { !worker.logLines(containing: "no longer exists").isEmpty }, "\(worker.logExcerpt)")
        let lines = worker.logLines(containing: "no longer exists")
        #expect(
            lines.contains { $0.contains(deletedID) || $0.contains(webhookID) },
            "no line names event \(deletedID) (\(webhookID)): \(lines)")
        // Attempt rows have no foreign key: the recorder itself must not leave an orphan.
        #expect(try setup.connection.query("SELECT count(*) FROM herald.invocation_log WHERE event_id = \(deletedID)")[0, 0] == "0")
        #expect(try receiver.requests().filter { $0.path == "/ok" }.count == 200)
        #expect(worker.process.isRunning)
        #expect(worker.terminate() == 0)
    }

    /// The worker's role loses its rights on herald.event_log for 4 s: every claim fails
    /// with a permission error on a healthy connection. The first engine treated that as a
    /// lost connection and reconnected and retried at once: ~1,250 warnings and ~5,000
    /// transactions in 4 s. It must back off, log a few lines, and recover by itself.
    @Test func failingQueryBacksOffAndRecovers() throws {
        let receiver = try Receiver()
        let setup = try WorkerFixture(webhook: receiver.url("/ok"))
        let role = try TemporaryRole(database: setup.database)
        defer { role.drop() }
        try setup.connection.execute(script: "GRANT SELECT, INSERT, UPDATE, DELETE ON items TO \(role.name)")
        let worker = try WorkerProcess(configPath: setup.configPath, environment: ["HERALD_DATABASE_URL": role.url], readiness: true)
        defer { if worker.process.isRunning { worker.killHard() } }
        try #require(worker.waitUntilStarted(), "\(worker.logExcerpt)")
        try setup.insert(3)
        try #require(
            try eventually { try setup.count("status = 'delivered'") == 3 },
            "the worker cannot deliver as role \(role.name)\n\(worker.logExcerpt)")

        let transactionsBefore = try setup.database.transactionCount()
        try setup.connection.execute(script: "REVOKE ALL ON herald.event_log FROM \(role.name)")
        try setup.insert(20)
        Thread.sleep(forTimeInterval: 4)
        let transactionsDuring = try setup.database.transactionCount() - transactionsBefore
        let errorLines = worker.logLines(containing: "permission denied").count
        try setup.connection.execute(
            script: "GRANT SELECT, INSERT, UPDATE, DELETE ON herald.event_log TO \(role.name)")

        #expect(
            try eventually(timeout: 15) { try setup.count("status = 'delivered'") == 23 },
            "\((try? setup.count("status = 'delivered'")) ?? -1) of 23 delivered after the grant\n\(worker.logExcerpt)")
        #expect(errorLines >= 1, "the outage left no trace in the log")
        #expect(errorLines < 15, "\(errorLines) log lines about the permission error in 4 s")
        #expect(transactionsDuring < 200, "\(transactionsDuring) transactions in the 4 s outage")
        #expect(worker.process.isRunning)
        #expect(worker.terminate() == 0)
    }

    /// The database server is down for 8 s. The first engine pinged the systemd watchdog
    /// only while the claimer was connected, so a database outage longer than WatchdogSec
    /// got a healthy worker killed and restarted in a loop. Pings must go on (the process is
    /// alive), the status must say why it is not delivering, and delivery must resume.
    @Test func watchdogPingsContinueThroughDatabaseOutage() throws {
        let server = try DedicatedPostgres()
        let receiver = try Receiver()
        let connection = try PGConnection(url: server.url)
        try connection.execute(script: "CREATE TABLE items (id serial PRIMARY KEY, name text)")
        let yaml = workerConfigYAML(
            databaseURL: server.url, webhook: receiver.url("/ok"), retry: "{num_retries: 3, interval_sec: 0, timeout_sec: 5}")
        let path = try temporaryFile(yaml)
        try TriggerInstaller(
            config: try ConfigLoader.parse(yaml: yaml, file: path, environment: [:]), logger: Logger(label: "test")
        ).install(connection)
        let socket = try NotifySocket()
        let datagrams = DatagramCollector(socket: socket)
        defer { datagrams.stop() }
        // WATCHDOG_USEC 2 s: a ping about every second.
        let worker = try WorkerProcess(
            configPath: path, environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "2000000"], readiness: true)
        try #require(worker.waitUntilStarted(), "\(worker.logExcerpt)")
        try connection.execute(script: "INSERT INTO items (name) SELECT 'before' FROM generate_series(1, 5)")
        try #require(try eventually { try receiver.stats().count == 5 }, "\(worker.logExcerpt)")
        #expect(eventually(timeout: 5) { datagrams.all.contains { Self.lines($0.text).contains("WATCHDOG=1") } })

        try server.stop()
        let outageStarted = Date()
        Thread.sleep(forTimeInterval: 8)
        let outageEnded = Date()
        try server.start()

        let during = datagrams.received(from: outageStarted, to: outageEnded).flatMap { Self.lines($0.text) }
        let pings = during.filter { $0 == "WATCHDOG=1" }.count
        let statuses = during.filter { $0.hasPrefix("STATUS=") }
        #expect(pings >= 4, "\(pings) watchdog pings in 8 s without a database; all datagrams: \(during)")
        #expect(statuses.contains { $0.contains("database unreachable") }, "\(statuses)")

        let check = try PGConnection(url: server.url)
        try check.execute(script: "INSERT INTO items (name) SELECT 'after' FROM generate_series(1, 5)")
        #expect(
            try eventually(timeout: 30) {
                try check.query("SELECT count(*) FROM herald.event_log WHERE status = 'delivered'")[0, 0] == "10"
            }, "\(worker.logExcerpt)")
        #expect(worker.process.isRunning)
        #expect(worker.terminate() == 0)
    }

    /// Five requests that would take 20 s are in flight when SIGTERM arrives, with a 3 s
    /// grace, and five more answer during the grace but their outcomes cannot be written
    /// (the test makes every insert into herald.invocation_log fail). The first engine gave
    /// the grace to each stage in turn: 3 s waiting for the requests, then 3 s more retrying
    /// the recorder (~7 s here). Shutdown must take one grace in all, exit 0, and hand every
    /// event back: no lease left, nothing lost, the slow ones pending and due at once.
    @Test func sigtermUsesOneShutdownGraceInTotal() throws {
        let receiver = try Receiver()
        let setup = try WorkerFixture(
            webhook: receiver.url("/sleep/20000"), retry: "{num_retries: 3, interval_sec: 0, timeout_sec: 30}",
            worker: "shutdown_grace_seconds: 3, lease_seconds: 60",
            extraTrigger: """
                  - table: {schema: public, name: items}
                    event_triggers:
                      - name: items_quick
                        definition: {insert: {columns: "*"}}
                        retry_conf: {num_retries: 3, interval_sec: 0, timeout_sec: 5}
                        webhook: \(receiver.url("/sleep/1000"))
                """)
        try setup.connection.execute(
            script: """
                CREATE FUNCTION refuse_invocations() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'invocation_log refuses writes in this test'; END $$;
                CREATE TRIGGER refuse_invocations BEFORE INSERT ON herald.invocation_log
                    FOR EACH STATEMENT EXECUTE FUNCTION refuse_invocations();
                """)
        try setup.insert(5)
        let worker = try WorkerProcess(configPath: setup.configPath)
        try #require(try eventually { try receiver.stats().count >= 10 }, "\(worker.logExcerpt)")
        let signalled = Date()
        let status = worker.terminate(timeout: 20)
        let seconds = secondsSince(signalled)
        try setup.connection.execute(script: "DROP TRIGGER refuse_invocations ON herald.invocation_log")
        #expect(status == 0, "\(worker.logExcerpt)")
        #expect(seconds < 6, "shutdown took \(String(format: "%.1f", seconds)) s with a 3 s grace\n\(worker.logExcerpt)")
        #expect(seconds > 2.5, "in-flight deliveries got no grace (\(String(format: "%.1f", seconds)) s)")
        #expect(try setup.count("locked_by IS NOT NULL OR locked_at IS NOT NULL") == 0)
        #expect(try setup.count("trigger_name = 'items_hook' AND status = 'pending' AND next_attempt_at <= now()") == 5)
        // Their answers could not be recorded: delivered again later, never lost.
        #expect(
            try setup.count(
                "trigger_name = 'items_quick' AND (status = 'delivered' OR (status = 'pending' AND next_attempt_at <= now()))")
                == 5)
    }

    /// The assignments in one sd_notify datagram (one per line).
    static func lines(_ datagram: String) -> [String] {
        datagram.split(separator: "\n").map(String.init)
    }
}
