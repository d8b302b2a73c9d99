import Foundation
import Logging
import Testing

@testable import Herald

/// A database with an `accounts` table (composite primary key) and one ordered trigger on
/// it, installed; workers are started by the tests.
struct OrderingFixture {
    let database: TestDatabase
    let connection: PGConnection
    let configPath: String

    init(
        webhook: String, ordering: String, retry: String, worker: String = "", extra: String = "", statsListen: String = "",
        batch: String? = nil
    ) throws {
        database = try TestDatabase()
        connection = try database.connect()
        try connection.execute(
            script: "CREATE TABLE accounts (tenant text NOT NULL, id int NOT NULL, n int NOT NULL, PRIMARY KEY (tenant, id))")
        // Test defaults, each replaced by a setting of the same name in `worker`.
        let defaults = ["fetch_interval_ms: 100", "recorder_flush_interval_ms: 5", "stats_log_interval_seconds: 1", "lease_seconds: 5"]
        let settings = defaults.filter { !worker.contains($0.prefix { $0 != ":" }) } + (worker.isEmpty ? [] : [worker])
        let yaml = """
            database: {url: '\(database.url)'}
            worker: {\(settings.joined(separator: ", "))}
            stats: {listen: "\(statsListen)"}
            \(extra)
            tables:
              - table: {schema: public, name: accounts}
                event_triggers:
                  - name: account_changes
                    definition: {insert: {columns: "*"}, update: {columns: "*"}, delete: {columns: "*"}}
                    retry_conf: \(retry)
                    ordering: \(ordering)
                    webhook: \(webhook)
            """ + (batch.map { "\n        batch: \($0)" } ?? "")
        configPath = try temporaryFile(yaml)
        let install = try runHerald(["install-triggers", "--config", configPath])
        guard install.status == 0 else { throw ReceiverError(message: "install-triggers failed: \(install.stderr)") }
    }

    func count(_ condition: String) throws -> Int {
        Int(try connection.query("SELECT count(*) FROM herald.event_log WHERE \(condition)")[0, 0] ?? "") ?? -1
    }

    func eventNumber(_ condition: String) throws -> String {
        try connection.query("SELECT id FROM herald.event_log WHERE \(condition) ORDER BY id LIMIT 1")[0, 0] ?? ""
    }
}

/// One delivery attempt as the receiver saw it, in arrival order.
struct KeyedDelivery {
    var webhookID: String
    var tenant: String
    var id: Int
    var n: Int
    var op: String

    static func parse(_ requests: [Receiver.Request]) -> [KeyedDelivery] {
        requests.compactMap { request in
            guard let object = try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any],
                let event = object["event"] as? [String: Any], let data = event["data"] as? [String: Any],
                let row = (data["new"] as? [String: Any]) ?? (data["old"] as? [String: Any]),
                let id = row["id"] as? Int, let n = row["n"] as? Int
            else { return nil }
            return KeyedDelivery(
                webhookID: request.header("webhook-id") ?? "", tenant: row["tenant"] as? String ?? "", id: id, n: n,
                op: event["op"] as? String ?? "")
        }
    }

    /// Keys whose events' first deliveries did not arrive in strictly increasing `n`.
    static func outOfOrderKeys(_ deliveries: [KeyedDelivery]) -> [String] {
        var seen = Set<String>()
        var last: [String: Int] = [:]
        var broken: Set<String> = []
        for delivery in deliveries where seen.insert(delivery.webhookID).inserted {
            let key = "\(delivery.tenant)/\(delivery.id)"
            if let previous = last[key], delivery.n <= previous { broken.insert(key) }
            last[key] = delivery.n
        }
        return broken.sorted()
    }
}

@Suite("Ordered delivery per key", .enabled(if: TestEnvironment.integrationEnabled))
struct OrderingTests {
    /// 50 keys × 40 successive updates of a counter through a receiver that fails 20% of
    /// requests and sometimes answers slowly, with two workers; optionally one is killed
    /// with SIGKILL part way. Every event arrives, and each key's first deliveries arrive in
    /// counter order.
    func runCounterWorkload(killOne: Bool) throws {
        let receiver = try Receiver()
        let setup = try OrderingFixture(
            webhook: receiver.url("/chaos/20"), ordering: "{key: primary_key}",
            retry: "{num_retries: 30, interval_sec: 0, timeout_sec: 2}")
        try setup.connection.execute(
            script: "INSERT INTO accounts SELECT 't' || (g % 5), g, 0 FROM generate_series(1, 50) g")
        let first = try WorkerProcess(configPath: setup.configPath)
        let second = try WorkerProcess(configPath: setup.configPath)
        for _ in 1...40 {
            try setup.connection.execute(script: "UPDATE accounts SET n = n + 1")
        }
        let total = 50 + 50 * 40
        if killOne {
            // Killed once it has delivered a share of the run (its stats line says so) and a
            // third of the events are done, so it dies holding leases mid-run.
            #expect(try eventually(timeout: 60) {
                try setup.count("status = 'delivered'") >= total / 3 && first.log.contains(/delivered=[1-9]/)
            })
            first.killHard()
        }
        let allDelivered = try eventually(timeout: 120) { try setup.count("status = 'delivered'") == total }
        let delivered = try setup.count("status = 'delivered'")
        #expect(allDelivered, "delivered \(delivered) of \(total)\n\(second.log.suffix(3000))")
        let deliveries = KeyedDelivery.parse(try receiver.requests())
        #expect(Set(deliveries.map(\.webhookID)).count == total)
        #expect(KeyedDelivery.outOfOrderKeys(deliveries) == [])
        // The receiver's failures really happened and both workers took part.
        #expect(try setup.count("tries > 1") > 50)
        #expect(first.log.contains(/delivered=[1-9]/), "\(first.log.suffix(2000))")
        #expect(second.log.contains(/delivered=[1-9]/), "\(second.log.suffix(2000))")
        #expect(second.terminate() == 0)
        if !killOne { #expect(first.terminate() == 0) }
    }

    @Test func twoWorkersDeliverEachKeyInOrderDespiteFailuresAndSlowAnswers() throws {
        try runCounterWorkload(killOne: false)
    }

    @Test func orderHoldsWhenAWorkerIsKilledMidRun() throws {
        try runCounterWorkload(killOne: true)
    }

    /// `on_failure: block`: a head that fails for good holds its key (later events of the key
    /// stay pending with no attempt) while other keys flow; redeliver-event retries it as
    /// the head; skip-event marks it failed and the key moves on in order.
    @Test func aDeadHeadBlocksItsKeyUntilSkippedWhileOtherKeysFlow() throws {
        let receiver = try Receiver()
        let alerts = try Receiver()
        // Only the INSERT event of row (t, 7) fails: the only one whose new row has n 0 and id 7.
        let failing = "\"new\": {\"n\": 0, \"id\": 7,".addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let statsPort = try freePort()
        let setup = try OrderingFixture(
            webhook: receiver.url("/failwhen/\(failing)"), ordering: "{key: primary_key, on_failure: block}",
            retry: "{num_retries: 1, interval_sec: 0, timeout_sec: 2}",
            extra: "alerts: {webhook: '\(alerts.url("/alerts"))', digest_interval_sec: 1}",
            statsListen: "127.0.0.1:\(statsPort)")
        let worker = try WorkerProcess(configPath: setup.configPath)
        try setup.connection.execute(script: "INSERT INTO accounts SELECT 't', g, 0 FROM generate_series(1, 10) g")
        for _ in 1...3 { try setup.connection.execute(script: "UPDATE accounts SET n = n + 1") }
        // 9 keys × 4 events delivered; key (t, 7): the head blocked, 3 waiting, never tried.
        #expect(try eventually(timeout: 30) { try setup.count("status = 'delivered'") == 36 }, "\(worker.log)")
        #expect(try eventually { try setup.count("blocked_at IS NOT NULL") == 1 })
        let head = try setup.eventNumber("blocked_at IS NOT NULL")
        #expect(try setup.count("status = 'pending' AND blocked_at IS NOT NULL AND tries = 2 AND next_attempt_at = 'infinity'") == 1)
        #expect(try setup.count("status = 'pending' AND blocked_at IS NULL AND tries = 0 AND ordering_key = '[\"t\", 7]'") == 3)
        #expect(try setup.count("status = 'failed'") == 0)
        Thread.sleep(forTimeInterval: 0.5)
        #expect(KeyedDelivery.parse(try receiver.requests()).filter { $0.id == 7 }.count == 2)

        // Visible: herald stats and the failure alert name the blocked key.
        let stats = try runHerald(["stats", "--config", setup.configPath, "--json"])
        #expect(stats.stdout.contains("\"blocked_keys\" : 1"), "\(stats.stdout)")
        let table = try runHerald(["stats", "--config", setup.configPath])
        #expect(table.stdout.contains("blocked keys account_changes: 1"), "\(table.stdout)")
        // /metrics: the queue-depth job reads blocked keys every 10 s.
        let metricsShowIt = try eventually(timeout: 15) {
            let metrics = try httpGet("http://127.0.0.1:\(statsPort)/metrics").body
            return metrics.contains("herald_blocked_keys{trigger=\"account_changes\"} 1")
                && metrics.contains("herald_oldest_blocked_age_seconds{trigger=\"account_changes\"}")
        }
        let metricsText = try httpGet("http://127.0.0.1:\(statsPort)/metrics").body
        #expect(metricsShowIt, "\(metricsText)")
        let alerted = try eventually {
            try alerts.requests().contains { $0.body.contains("\"key_blocked\":true") && $0.body.contains("[\\\"t\\\", 7]") }
        }
        let alertBodies = try alerts.requests().map(\.body)
        #expect(alerted, "\(alertBodies)")

        // Redeliver retries the head (two more attempts, blocked again); the followers wait.
        let redeliver = try runHerald(["redeliver-event", "--config", setup.configPath, head])
        #expect(redeliver.status == 0, "\(redeliver.stderr)")
        #expect(try eventually { KeyedDelivery.parse(try receiver.requests()).filter { $0.id == 7 }.count == 4 })
        #expect(try eventually { try setup.count("blocked_at IS NOT NULL AND id = \(head)") == 1 })
        #expect(try setup.count("status = 'pending' AND tries = 0 AND ordering_key = '[\"t\", 7]'") == 3)

        // Skip releases the key: the head is failed (and says so), the rest arrive in order.
        let skip = try runHerald(["skip-event", "--config", setup.configPath, head])
        #expect(skip.status == 0, "\(skip.stderr)")
        #expect(skip.stdout.contains("moves on"), "\(skip.stdout)")
        #expect(try eventually { try setup.count("status = 'delivered'") == 39 }, "\(worker.log)")
        #expect(try setup.count("status = 'failed' AND last_error LIKE 'skipped by herald skip-event%' AND id = \(head)") == 1)
        let key7 = KeyedDelivery.parse(try receiver.requests()).filter { $0.id == 7 }
        #expect(key7.map(\.n) == [0, 0, 0, 0, 1, 2, 3])
        #expect(KeyedDelivery.outOfOrderKeys(KeyedDelivery.parse(try receiver.requests())) == [])
        let again = try runHerald(["skip-event", "--config", setup.configPath, head])
        #expect(again.status != 0 && again.stderr.contains("not pending"), "\(again.stderr)")
        #expect(worker.terminate() == 0)
    }

    /// `on_failure: skip`: the failed head is marked failed and the key moves on.
    @Test func skipModeMovesTheKeyOnAfterItsHeadFails() throws {
        let receiver = try Receiver()
        let failing = "\"new\": {\"n\": 0, \"id\": 3,".addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let setup = try OrderingFixture(
            webhook: receiver.url("/failwhen/\(failing)"), ordering: "{key: primary_key, on_failure: skip}",
            retry: "{num_retries: 1, interval_sec: 0, timeout_sec: 2}")
        let worker = try WorkerProcess(configPath: setup.configPath)
        try setup.connection.execute(script: "INSERT INTO accounts SELECT 't', g, 0 FROM generate_series(1, 5) g")
        for _ in 1...2 { try setup.connection.execute(script: "UPDATE accounts SET n = n + 1") }
        #expect(try eventually(timeout: 30) { try setup.count("status = 'delivered'") == 14 }, "\(worker.log)")
        #expect(try setup.count("status = 'failed' AND tries = 2") == 1)
        #expect(try setup.count("blocked_at IS NOT NULL") == 0)
        let key3 = KeyedDelivery.parse(try receiver.requests()).filter { $0.id == 3 }
        #expect(key3.map(\.n) == [0, 0, 1, 2])
        #expect(worker.terminate() == 0)
    }

    /// A composite key keeps rows apart that share one column; DELETE takes its key from the
    /// old row; install-triggers says when a trigger becomes ordered.
    @Test func compositeKeysAndDeletesUseTheRightRow() throws {
        let receiver = try Receiver()
        let setup = try OrderingFixture(
            webhook: receiver.url("/ok"), ordering: "{key: [tenant, id]}",
            retry: "{num_retries: 0, interval_sec: 0, timeout_sec: 2}")
        try setup.connection.execute(
            script: """
                INSERT INTO accounts VALUES ('a', 1, 0), ('b', 1, 0);
                UPDATE accounts SET n = 5 WHERE tenant = 'a';
                DELETE FROM accounts WHERE tenant = 'b';
                """)
        let keys = try setup.connection.query(
            "SELECT ordering_key, payload->>'op' FROM herald.event_log ORDER BY id")
        let pairs = (0..<keys.rowCount).map { "\(keys[$0, 0] ?? "") \(keys[$0, 1] ?? "")" }
        #expect(pairs == ["[\"a\", 1] INSERT", "[\"b\", 1] INSERT", "[\"a\", 1] UPDATE", "[\"b\", 1] DELETE"])
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'delivered'") == 4 }, "\(worker.log)")
        let deliveries = KeyedDelivery.parse(try receiver.requests())
        #expect(deliveries.filter { $0.tenant == "b" }.map(\.op) == ["INSERT", "DELETE"])
        #expect(deliveries.filter { $0.tenant == "a" }.map(\.n) == [0, 5])
        #expect(worker.terminate() == 0)

        // Turning ordering off and on again is announced by install-triggers.
        let yaml = try String(contentsOfFile: setup.configPath, encoding: .utf8)
        try yaml.replacingOccurrences(of: "ordering: {key: [tenant, id]}", with: "")
            .write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        let off = try runHerald(["install-triggers", "--config", setup.configPath])
        #expect(off.stdout.contains("no longer captures ordering keys"), "\(off.stdout)\(off.stderr)")
        try yaml.write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        let on = try runHerald(["install-triggers", "--config", setup.configPath])
        #expect(on.stdout.contains("now delivers in order per key"), "\(on.stdout)\(on.stderr)")
    }

    /// Redelivering an old, delivered event while later events of its key are pending sends
    /// it after them: an old value never overtakes a newer one.
    @Test func aRedeliveredOldEventGoesBehindThePendingEventsOfItsKey() throws {
        let receiver = try Receiver()
        let setup = try OrderingFixture(
            webhook: receiver.url("/ok"), ordering: "{key: primary_key}",
            retry: "{num_retries: 0, interval_sec: 0, timeout_sec: 2}")
        try setup.connection.execute(script: "INSERT INTO accounts VALUES ('t', 1, 0)")
        var worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'delivered'") == 1 }, "\(worker.log)")
        #expect(worker.terminate() == 0)
        let old = try setup.eventNumber("true")
        try setup.connection.execute(script: "UPDATE accounts SET n = 1; UPDATE accounts SET n = 2;")
        let redeliver = try runHerald(["redeliver-event", "--config", setup.configPath, old])
        #expect(redeliver.status == 0, "\(redeliver.stderr)")
        worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'delivered'") == 3 }, "\(worker.log)")
        #expect(KeyedDelivery.parse(try receiver.requests()).map(\.n) == [0, 1, 2, 0])
        #expect(worker.terminate() == 0)
    }

    /// The next event of a key is claimed when its head's outcome is written, not at the
    /// next poll: with a 10 s poll interval, 20 successive events of one key take well under
    /// a poll interval.
    @Test func theNextEventOfAKeyGoesOutWithoutWaitingForAPoll() throws {
        let receiver = try Receiver()
        let setup = try OrderingFixture(
            webhook: receiver.url("/ok"), ordering: "{key: primary_key}",
            retry: "{num_retries: 0, interval_sec: 0, timeout_sec: 2}", worker: "fetch_interval_ms: 10000")
        try setup.connection.execute(script: "INSERT INTO accounts VALUES ('t', 1, 0)")
        for _ in 1...19 { try setup.connection.execute(script: "UPDATE accounts SET n = n + 1") }
        let worker = try WorkerProcess(configPath: setup.configPath)
        let started = Date()
        #expect(try eventually(timeout: 30) { try setup.count("status = 'delivered'") == 20 }, "\(worker.log)")
        #expect(secondsSince(started) < 5, "took \(secondsSince(started)) s")
        #expect(KeyedDelivery.parse(try receiver.requests()).map(\.n) == Array(0...19))
        #expect(worker.terminate() == 0)
    }

    /// The claim walks keys through their index: many keys and a long finished log do not
    /// make it read the events waiting behind heads, nor the finished ones.
    @Test func claimReadsOneEntryPerKeyBehindALongLog() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        _ = try connection.transaction { try SchemaMigrator.apply(connection) }
        try connection.execute(
            script: """
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, status, tries, ordering_key)
                SELECT 'k', 'public', 'x', '{}', 'delivered', 1, '[' || (g % 1000) || ']' FROM generate_series(1, 200000) g;
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, ordering_key)
                SELECT 'k', 'public', 'x', '{}', '[' || (g % 1000) || ']' FROM generate_series(1, 20000) g;
                ANALYZE herald.event_log;
                """)
        let plan = try connection.query(
            "EXPLAIN (FORMAT TEXT) " + EventStore.claimSQL, ["{100}", "w", "60", "{k}", "{\"\"}"]
        ).column(0).compactMap { $0 }.joined(separator: "\n")
        #expect(plan.contains("event_log_pending_key_heads"), "\(plan)")
        #expect(!plan.contains("Seq Scan on event_log"), "\(plan)")
        let store = EventStore(connection: connection)
        var cursors = KeyCursors()
        var seen = Set<String>()
        // Each claim takes 100 heads, then the next 100 keys: no key twice, none skipped.
        for _ in 0..<5 {
            let claimed = try store.claimBatch(
                limits: ["k": 100], after: cursors.starts, keyed: ["k"], workerID: "w", leaseSeconds: 60)
            #expect(claimed.count == 100)
            for event in claimed { #expect(seen.insert(event.orderingKey ?? "").inserted) }
            _ = cursors.advance(asked: ["k": 100], claimed: claimed)
        }
        // Heads only: the lowest id of each key.
        let notHeads = try connection.query(
            """
            SELECT count(*) FROM herald.event_log e WHERE e.locked_by = 'w' AND EXISTS (
                SELECT FROM herald.event_log p WHERE p.ordering_key = e.ordering_key AND p.status = 'pending' AND p.id < e.id)
            """)
        #expect(notHeads[0, 0] == "0")
        // Leased heads hold their keys: a second worker finds only the 500 keys left.
        let other = try store.claimBatch(limits: ["k": 1000], keyed: ["k"], workerID: "w2", leaseSeconds: 60)
        #expect(other.count == 500)
        #expect(Set(other.compactMap(\.orderingKey)).isDisjoint(with: seen))
    }
}
