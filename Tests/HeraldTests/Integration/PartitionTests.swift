import Foundation
import Logging
import Testing

@testable import Herald

/// Inserts one `items` row per transaction (one captured event each) on a thread of its
/// own until stopped: the application writing while Herald converts and maintains the log.
final class SteadyWriter: @unchecked Sendable {
    private let connection: PGConnection
    private let interval: Double
    private let lock = NSLock()
    private var stopped = false
    private var written = 0
    private var failures: [String] = []
    private let finished = DispatchSemaphore(value: 0)

    init(url: String, perSecond: Double) throws {
        connection = try PGConnection(url: url)
        interval = 1 / perSecond
        Thread { [self] in loop() }.start()
    }

    private func loop() {
        while !lock.withLock({ stopped }) {
            do {
                try connection.execute(script: "INSERT INTO items (name) VALUES ('steady')")
                lock.withLock { written += 1 }
            } catch {
                lock.withLock { failures.append("\(error)") }
            }
            Thread.sleep(forTimeInterval: interval)
        }
        finished.signal()
    }

    /// Stops and returns the rows written and the errors the application would have seen.
    func stop() -> (written: Int, failures: [String]) {
        lock.withLock { stopped = true }
        finished.wait()
        return lock.withLock { (written, failures) }
    }
}

@Suite("Partitioned log", .enabled(if: TestEnvironment.integrationEnabled))
struct PartitionTests {
    /// A worker fixture whose config has `partitioning:` (and `extra` top-level YAML); the
    /// log is converted unless `convert` is false.
    func fixture(webhook: String, partitioning: String, extra: String = "", convert: Bool = true) throws -> WorkerFixture {
        let setup = try WorkerFixture(webhook: webhook, extraTrigger: "partitioning: \(partitioning)\n\(extra)")
        if convert {
            _ = try PartitionConversion.install(try #require(setup.config.partitioning), setup.connection)
        }
        return setup
    }

    func relkind(_ setup: WorkerFixture, _ table: String) throws -> String? {
        try setup.connection.query("SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)", ["herald.\(table)"])[0, 0]
    }

    func partitions(_ connection: PGConnection, _ table: String) throws -> [String] {
        try connection.query(
            """
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = to_regclass($1) ORDER BY 1
            """, ["herald.\(table)"]
        ).column(0).compactMap { $0 }
    }

    func indexDefinitions(_ connection: PGConnection, _ table: String) throws -> [String: String] {
        let result = try connection.query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'herald' AND tablename = $1", [table])
        return Dictionary(uniqueKeysWithValues: (0..<result.rowCount).map { (result[$0, 0] ?? "", result[$0, 1] ?? "") })
    }

    /// Inserts `count` pending events of `items_hook` created `hoursAhead` from now, as a
    /// clock running ahead or a burst past the premade ranges would.
    func insertEvents(_ setup: WorkerFixture, count: Int, hoursAhead: Int, status: String = "pending") throws {
        try setup.connection.query(
            """
            INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, status, created_at, finished_at)
            SELECT 'items_hook', 'public', 'items', jsonb_build_object('op', 'INSERT', 'data', jsonb_build_object('old', NULL, 'new', jsonb_build_object('id', g))),
                   $3, now() + make_interval(hours => $2::int), CASE WHEN $3 = 'pending' THEN NULL ELSE now() END
            FROM generate_series(1, $1::int) g
            """, [String(count), String(hoursAhead), status])
    }

    /// Deliveries by webhook-id.
    func deliveries(_ receiver: Receiver) throws -> [String: Int] {
        try receiver.requests().reduce(into: [:]) { counts, request in counts[request.header("webhook-id") ?? "", default: 0] += 1 }
    }

    /// The worker's queue gauges and the console's overview on a large partitioned log: the
    /// parent holds no rows, so the size and the shares come from the partitions.
    @Test func aLargePartitionedLogIsEstimatedFromItsPartitionsStatistics() throws {
        let setup = try fixture(webhook: "http://127.0.0.1:9/never", partitioning: "{interval: 1h, premake: 2}")
        try insertEvents(setup, count: 3000, hoursAhead: 0, status: "delivered")
        try insertEvents(setup, count: 7, hoursAhead: 0)
        try setup.connection.execute(script: "ANALYZE herald.event_log")
        let estimated = try #require(
            try QueueStats.readBounded(setup.connection, configured: ["items_hook"], exactCountLimit: 1000).triggers.first)
        #expect(estimated.deliveredIsEstimate)
        #expect(estimated.pending == 7)
        #expect(abs(estimated.delivered - 3000) < 300, "\(estimated)")
        let exact = try #require(
            try QueueStats.readBounded(setup.connection, configured: ["items_hook"], exactCountLimit: 10_000).triggers.first)
        #expect(!exact.deliveredIsEstimate && exact.delivered == 3000 && exact.pending == 7)
    }

    @Test func installTwiceChangesNothingTheSecondTimeAndKeepsEveryIndexOfAPlainLog() throws {
        let plain = try WorkerFixture(webhook: "http://127.0.0.1:9/never")
        let setup = try fixture(webhook: "http://127.0.0.1:9/never", partitioning: "{interval: 1h, premake: 2}", convert: false)

        let dryRun = try runHerald(["install-triggers", "--dry-run", "--config", setup.configPath])
        #expect(dryRun.status == 0, "\(dryRun.stderr)")
        #expect(dryRun.stdout.contains("ATTACH PARTITION herald.event_log_legacy FOR VALUES FROM (MINVALUE)"), "\(dryRun.stdout)")
        #expect(try relkind(setup, "event_log") == "r")

        let first = try runHerald(["install-triggers", "--config", setup.configPath])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("partitioned herald.event_log and herald.invocation_log"), "\(first.stdout)")
        #expect(try relkind(setup, "event_log") == "p")
        #expect(try relkind(setup, "invocation_log") == "p")
        let made = try partitions(setup.connection, "event_log")
        // The legacy partition reaches the first hour boundary at least ten minutes ahead,
        // so in an hour's last ten minutes it covers the next hour too: count on the range
        // premake reaches (two hours on), not on how many were made.
        let stamp = DateFormatter()
        stamp.dateFormat = "yyyyMMdd_HH00"
        stamp.timeZone = TimeZone(identifier: "UTC")
        let lastAhead = "event_log_p" + stamp.string(from: Date().addingTimeInterval(7200))
        #expect(made.contains("event_log_legacy") && made.contains("event_log_default") && made.contains(lastAhead), "\(made)")
        #expect(try partitions(setup.connection, "invocation_log").count == made.count)

        let second = try runHerald(["install-triggers", "--config", setup.configPath])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout == "no changes: 1 triggers up to date\n", "\(second.stdout)")
        #expect(try partitions(setup.connection, "event_log") == made)
        let secondDryRun = try runHerald(["install-triggers", "--dry-run", "--config", setup.configPath])
        #expect(secondDryRun.stdout.hasPrefix("-- no changes"), "\(secondDryRun.stdout)")

        // Same index names and definitions as sql/ gives a plain log; only the keys differ:
        // a partitioned table's unique indexes must hold created_at.
        for table in ["event_log", "invocation_log"] {
            let expected = try indexDefinitions(plain.connection, table)
            let actual = try indexDefinitions(setup.connection, table)
            #expect(Set(actual.keys) == Set(expected.keys), "\(table)")
            for (name, definition) in expected where name != "\(table)_pkey" {
                let plainForm = definition.replacingOccurrences(of: "CREATE UNIQUE INDEX", with: "CREATE INDEX")
                #expect(actual[name]?.replacingOccurrences(of: " ON ONLY ", with: " ON ") == plainForm, "\(name)")
            }
            #expect(actual["\(table)_pkey"]?.contains("(id, created_at)") == true)
        }
        // The wake trigger (sql/017) moved to the partitioned log, and every partition has it.
        let wakeTriggers = try setup.connection.query(
            """
            SELECT count(*) FILTER (WHERE tgrelid = 'herald.event_log'::regclass), count(*)
            FROM pg_trigger WHERE tgname = 'herald_wake'
            """)
        #expect(wakeTriggers[0, 0] == "1")
        #expect(wakeTriggers[0, 1] == String(made.count + 1))
        // The log still works as before: capture (waking a waiting session), claim, record.
        let waiter = try setup.database.connect()
        try waiter.listen("herald_events")
        #expect(try waiter.query("SELECT herald.wake_gate_arm()")[0, 0] == "t")
        try setup.insert(3)
        #expect(try eventually(timeout: 2) { try !waiter.waitForNotifications(timeoutMilliseconds: 50).isEmpty })
        let claimed = try EventStore(connection: setup.connection).claimBatch(
            limits: ["items_hook": 10], workerID: "w", leaseSeconds: 30)
        #expect(claimed.count == 3)
    }

    @Test func upgradingAPopulatedLogUnderLoadLosesNothingAndDeliversNothingTwice() throws {
        let receiver = try Receiver()
        let setup = try fixture(webhook: receiver.url("/ok"), partitioning: "{interval: 1h, premake: 2}", convert: false)
        // History: 50,000 delivered events with their invocation rows, and a backlog.
        try setup.connection.execute(
            script: """
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, status, tries, created_at, finished_at)
                SELECT 'items_hook', 'public', 'items', '{"op": "INSERT", "data": {"old": null, "new": {}}}', 'delivered', 1,
                       now() - interval '2 hours', now() - interval '1 hour'
                FROM generate_series(1, 50000);
                INSERT INTO herald.invocation_log (event_id, trigger_name, attempt, status_code, duration_ms, created_at)
                SELECT id, trigger_name, 1, 200, 1, now() - interval '1 hour' FROM herald.event_log;
                """)
        try setup.insert(500)
        let worker = try WorkerProcess(configPath: setup.configPath)
        let writer = try SteadyWriter(url: setup.database.url, perSecond: 100)
        #expect(try eventually(timeout: 30) { try setup.count("status = 'delivered' AND created_at > now() - interval '1 hour'") >= 100 })

        let upgrade = try runHerald(["install-triggers", "--config", setup.configPath])
        #expect(upgrade.status == 0, "\(upgrade.stderr)")
        let lockText = try #require(upgrade.stdout.firstMatch(of: /exclusive lock held ([0-9.]+) ms/)?.1, "\(upgrade.stdout)")
        let lockMilliseconds = try #require(Double(lockText))
        #expect(lockMilliseconds < 1000, "swap held its locks \(lockMilliseconds) ms")
        Thread.sleep(forTimeInterval: 2)
        let (written, failures) = writer.stop()
        #expect(failures.isEmpty, "\(failures.prefix(3))")

        let total = 500 + written
        let fresh = "created_at > now() - interval '1 hour'"
        let allDelivered = try eventually(timeout: 60) { try setup.count("status = 'delivered' AND \(fresh)") == total }
        let delivered = try setup.count("status = 'delivered' AND \(fresh)")
        #expect(allDelivered, "delivered \(delivered) of \(total)\n\(worker.log.suffix(2000))")
        let seen = try deliveries(receiver)
        #expect(seen.count == total)
        #expect(seen.values.filter { $0 > 1 }.isEmpty, "delivered twice: \(seen.filter { $0.value > 1 }.count)")
        #expect(try setup.count("created_at < now() - interval '90 minutes' AND status = 'delivered'") == 50000)
        #expect(try setup.database.values("SELECT count(*) FROM herald.invocation_log") == ["\(50000 + total)"])
        #expect(try relkind(setup, "event_log") == "p")
        // Captured after the swap into the partitioned parent; none in DEFAULT.
        #expect(try setup.database.values("SELECT count(*) FROM herald.event_log_default") == ["0"])
        #expect(worker.terminate() == 0)
    }

    @Test func partitionsArePremadeAndRotatedUnderARunningWorker() throws {
        let receiver = try Receiver()
        let setup = try fixture(
            webhook: receiver.url("/ok"), partitioning: "{interval: 1m, premake: 1}", extra: "retention: {delivered_after: 1s}")
        let installed = Set(try partitions(setup.connection, "event_log"))
        let worker = try WorkerProcess(configPath: setup.configPath)
        let writer = try SteadyWriter(url: setup.database.url, perSecond: 20)
        // The legacy partition ends one to two minutes after the install; passes run every 15 s.
        let rotated = try eventually(timeout: 180) {
            let now = Set(try partitions(setup.connection, "event_log"))
            return !now.contains("event_log_legacy") && !now.subtracting(installed).isEmpty
        }
        let (written, failures) = writer.stop()
        let current = try partitions(setup.connection, "event_log")
        #expect(rotated, "\(current)\n\(worker.log.suffix(3000))")
        #expect(failures.isEmpty, "\(failures.prefix(3))")
        #expect(try eventually(timeout: 30) { try deliveries(receiver).count == written })
        let seen = try deliveries(receiver)
        #expect(seen.count == written)
        #expect(seen.values.allSatisfy { $0 == 1 })
        #expect(worker.log.contains("dropped partition herald.event_log_legacy"))
        #expect(worker.log.contains("dropped partition herald.invocation_log_legacy"))
        #expect(worker.log.contains("created partition herald.event_log_p"))
        #expect(try setup.database.values("SELECT count(*) FROM herald.event_log_default") == ["0"])
        #expect(worker.terminate() == 0)
    }

    @Test func aBurstPastThePremadeRangesLandsInDefaultIsMovedAndReportedAndStillDelivered() throws {
        let receiver = try Receiver()
        let setup = try fixture(webhook: receiver.url("/ok"), partitioning: "{interval: 1h, premake: 1}")
        try insertEvents(setup, count: 40, hoursAhead: 5)
        #expect(try setup.database.values("SELECT count(*) FROM herald.event_log_default") == ["40"])

        // The worker's first pass reports the rows (log and metric) and moves them; delivery goes on.
        let port = try freePort()
        let worker = try WorkerProcess(configPath: setup.configPath, environment: ["HERALD_STATS_LISTEN": "127.0.0.1:\(port)"])
        #expect(try eventually { worker.log.contains("events landed in the DEFAULT partition") }, "\(worker.log.suffix(2000))")
        #expect(worker.log.contains("rows=40"))
        let metrics = try httpGet("http://127.0.0.1:\(port)/metrics").body
        #expect(metrics.contains("herald_partition_default_rows 40"), "\(metrics.split(separator: "\n").filter { $0.contains("partition") })")
        #expect(metrics.contains("herald_partitions_held_back 0"))
        #expect(try eventually { try setup.database.values("SELECT count(*) FROM herald.event_log_default") == ["0"] })

        // A second burst while the worker delivers, emptied by herald maintain.
        try insertEvents(setup, count: 30, hoursAhead: 7)
        try setup.insert(20)
        let maintain = try runHerald(["maintain", "--config", setup.configPath])
        #expect(maintain.status == 0, "\(maintain.stderr)")
        #expect(maintain.stderr.contains("warning: 30 events were in the DEFAULT partition"), "\(maintain.stderr)")
        #expect(maintain.stdout.contains("moved 30 into new partitions, 0 left"), "\(maintain.stdout)")
        #expect(try setup.database.values("SELECT count(*) FROM herald.event_log_default") == ["0"])

        #expect(try eventually(timeout: 30) { try setup.count("status = 'delivered'") == 90 }, "\(worker.log.suffix(2000))")
        let seen = try deliveries(receiver)
        #expect(seen.count == 90)
        // Captured events never sat in DEFAULT: each arrived once. A burst event whose row
        // moved while its delivery was in flight may arrive again after its lease (at least
        // once), never more.
        let captured = Set(try receiver.requests().filter { $0.body.contains("\"item ") }.compactMap { $0.header("webhook-id") })
        #expect(captured.count == 20)
        #expect(captured.allSatisfy { seen[$0] == 1 })
        #expect(seen.values.allSatisfy { $0 <= 2 })
        // The bursts sit in the ranges made for them, the captured rows below the cutover.
        #expect(try setup.count("tableoid::regclass::text LIKE 'herald.event_log_p%'") == 70)
        #expect(try setup.count("tableoid = 'herald.event_log_legacy'::regclass") == 20)
        // Every partition's payload index, premade, made for a burst or converted, keeps GIN's
        // pending list short (schema version 13).
        let tuned = try setup.database.values(Self.payloadIndexOptions).map { $0 ?? "" }
        #expect(tuned.count >= 4 && tuned.allSatisfy { $0.contains("gin_pending_list_limit=64") }, "\(tuned)")
        #expect(worker.terminate() == 0)
    }

    /// The storage options of every GIN index on an event-log table (plain or partition).
    static let payloadIndexOptions = """
        SELECT coalesce(array_to_string(c.reloptions, ','), '') FROM pg_class c
        JOIN pg_index x ON x.indexrelid = c.oid JOIN pg_am a ON a.oid = c.relam JOIN pg_class t ON t.oid = x.indrelid
        WHERE t.relnamespace = 'herald'::regnamespace AND t.relname LIKE 'event_log%' AND a.amname = 'gin' AND c.relkind = 'i'
        """

    @Test func retentionDropsAFinishedPartitionAndKeepsOneHoldingAPendingEventUntilItIsDelivered() throws {
        let receiver = try Receiver()
        let setup = try fixture(
            webhook: receiver.url("/ok"), partitioning: "{interval: 1h, premake: 6}", extra: "retention: {delivered_after: 1h}")
        let settings = try #require(setup.config.partitioning)
        let now = Int(Date().timeIntervalSince1970)
        let start = settings.layout.rangeStart(containing: now)
        let finished = PartitionLayout.partitionName(table: "event_log", start: start + 3 * 3600)
        let holding = PartitionLayout.partitionName(table: "event_log", start: start + 4 * 3600)
        let finishedInvocations = PartitionLayout.partitionName(table: "invocation_log", start: start + 3 * 3600)
        func at(_ hours: Int) -> String { "to_timestamp(\(start + hours * 3600 + 600))" }
        try setup.connection.execute(
            script: """
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, status, created_at, finished_at)
                SELECT 'items_hook', 'public', 'items', '{"op": "INSERT", "data": {"old": null, "new": {}}}', 'delivered', \(at(3)), \(at(3))
                FROM generate_series(1, 100);
                INSERT INTO herald.invocation_log (event_id, trigger_name, attempt, status_code, duration_ms, created_at)
                SELECT id, trigger_name, 1, 200, 1, created_at FROM herald.event_log;
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, status, created_at, finished_at)
                SELECT 'items_hook', 'public', 'items', '{"op": "INSERT", "data": {"old": null, "new": {}}}', 'delivered', \(at(4)), \(at(4))
                FROM generate_series(1, 50);
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, created_at)
                VALUES ('items_hook', 'public', 'items', '{"op": "INSERT", "data": {"old": null, "new": {"id": 7}}}', \(at(4)));
                """)
        #expect(try setup.count("tableoid = '\(PartitionedTable.eventLog.qualified.replacingOccurrences(of: "event_log", with: finished))'::regclass") == 100)

        // Ten hours on, with delivered events kept one hour.
        let maintainer = PartitionMaintainer(connection: setup.connection, layout: settings.layout, retention: setup.config.retention)
        let report = try maintainer.run(now: now + 10 * 3600)
        #expect(report.dropped.contains(finished), "\(report)")
        #expect(report.dropped.contains(finishedInvocations), "\(report)")
        #expect(report.heldBack == [holding], "\(report)")
        #expect(try setup.database.values("SELECT to_regclass('herald.\(finished)') IS NULL") == ["t"])
        #expect(try setup.database.values("SELECT count(*) FROM herald.\(holding)") == ["51"])
        #expect(try setup.count("true") == 51)
        #expect(report.longestLockMilliseconds < 2000)
        // Streams learn what went with the partition: its newest transaction (the one that
        // wrote all these rows) is the trigger's stream horizon.
        #expect(
            try setup.database.values(
                "SELECT h.xid = (SELECT max(xid) FROM herald.event_log) FROM herald.stream_horizon h WHERE h.trigger_name = 'items_hook'")
                == ["t"])

        // The held event is still delivered; then its partition goes too.
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try receiver.requests().count == 1 }, "\(worker.log.suffix(2000))")
        #expect(try eventually { try setup.count("status = 'pending'") == 0 })
        #expect(worker.terminate() == 0)
        let later = try maintainer.run(now: now + 10 * 3600)
        #expect(later.dropped.contains(holding), "\(later)")
        #expect(later.heldBack.isEmpty)
    }

    @Test func orderedDeliveryPerKeyStillHoldsOnAPartitionedLog() throws {
        let receiver = try Receiver()
        let setup = try OrderingFixture(
            webhook: receiver.url("/chaos/20"), ordering: "{key: primary_key}",
            retry: "{num_retries: 30, interval_sec: 0, timeout_sec: 2}", extra: "partitioning: {interval: 1h, premake: 2}")
        #expect(
            try setup.connection.query("SELECT relkind::text FROM pg_class WHERE oid = 'herald.event_log'::regclass")[0, 0] == "p")
        try setup.connection.execute(script: "INSERT INTO accounts SELECT 't' || (g % 4), g, 0 FROM generate_series(1, 20) g")
        let worker = try WorkerProcess(configPath: setup.configPath)
        for _ in 1...15 {
            try setup.connection.execute(script: "UPDATE accounts SET n = n + 1")
        }
        let total = 20 + 20 * 15
        #expect(
            try eventually(timeout: 90) { try setup.count("status = 'delivered'") == total }, "\(worker.log.suffix(2000))")
        let deliveries = KeyedDelivery.parse(try receiver.requests())
        #expect(Set(deliveries.map(\.webhookID)).count == total)
        #expect(KeyedDelivery.outOfOrderKeys(deliveries) == [])
        #expect(try setup.count("tries > 1") > 10)
        #expect(worker.terminate() == 0)
    }
}
