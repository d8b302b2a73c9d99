import Foundation
import Logging
import Testing

@testable import Herald

/// redeliver-event, invoke, stats and cleanup against a real PostgreSQL, through the CLI.
@Suite("Operations", .enabled(if: TestEnvironment.integrationEnabled))
struct OperationsTests {
    func setUp(webhook: String, manual: Bool = true) throws -> WorkerFixture {
        try WorkerFixture(webhook: webhook, manual: manual)
    }

    @Test func redeliveredFailedEventIsSentAgainWithTheSameWebhookID() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/flaky/1"))
        try setup.connection.execute(script: "INSERT INTO items (name) VALUES ('a')")
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'failed'") == 1 }, "\(worker.log)")
        let firstID = try #require(try receiver.requests().first?.header("webhook-id"))

        let result = try runHerald(["redeliver-event", "--config", setup.configPath, firstID])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("event \(firstID) queued for redelivery"))
        #expect(try eventually { try setup.count("status = 'delivered'") == 1 }, "\(worker.log)")
        let ids = try receiver.requests().compactMap { $0.header("webhook-id") }
        #expect(ids == [firstID, firstID])
        #expect(try setup.count("tries = 1") == 1)
        #expect(
            try setup.connection.query("SELECT count(*) FROM herald.invocation_log")[0, 0] == "2")
        #expect(worker.terminate() == 0)
    }

    /// A DBA looking at pg_stat_activity can tell the worker's sessions apart.
    @Test func theWorkersSessionsAreNamedByWhatTheyDo() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/ok"))
        let worker = try WorkerProcess(configPath: setup.configPath)
        try setup.connection.execute(script: "INSERT INTO items (name) VALUES ('a')")
        #expect(try eventually { try setup.count("status = 'delivered'") == 1 }, "\(worker.log)")
        let sessions = try setup.connection.query(
            """
            SELECT application_name, count(*) FROM pg_stat_activity
            WHERE datname = current_database() AND application_name LIKE 'herald-%'
            GROUP BY 1 ORDER BY 1
            """)
        let counts = Dictionary(uniqueKeysWithValues: (0..<sessions.rowCount).map { (sessions[$0, 0] ?? "", sessions[$0, 1] ?? "") })
        #expect(counts["herald-claimer"] == "1", "\(counts)")
        #expect(counts["herald-recorder"] == "1", "\(counts)")
        #expect(worker.terminate() == 0)
    }

    @Test func redeliveryOfALeasedEventIsRefusedUnlessForced() throws {
        let setup = try setUp(webhook: "http://127.0.0.1:9/never")
        try setup.connection.execute(script: "INSERT INTO items (name) VALUES ('a')")
        let claimed = try EventStore(connection: setup.connection).claimBatch(
            limits: ["items_hook": 1], workerID: "other-worker", leaseSeconds: 300)
        #expect(claimed.count == 1)
        let refused = try runHerald(["redeliver-event", "--config", setup.configPath, "1"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("being delivered by other-worker"))
        #expect(try setup.count("locked_by = 'other-worker'") == 1)
        let forced = try runHerald(["redeliver-event", "--config", setup.configPath, "--force", "1"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try setup.count("locked_by IS NULL AND tries = 0 AND next_attempt_at <= now()") == 1)
    }

    @Test func unknownIDsAreReportedAndTheOthersStillProcessed() throws {
        let setup = try setUp(webhook: "http://127.0.0.1:9/never")
        try setup.connection.execute(
            script: "INSERT INTO items (name) VALUES ('a'); UPDATE herald.event_log SET status = 'failed', tries = 1")
        let result = try runHerald([
            "redeliver-event", "--config", setup.configPath, "00000000-0000-8000-8000-000000000099", "1", "777", "abc",
        ])
        #expect(result.status == 1)
        #expect(result.stderr.contains("event 00000000-0000-8000-8000-000000000099: no such event"))
        #expect(result.stderr.contains("event 777: no such event"))
        // Neither a UUID nor a number: said so, rather than "no such event".
        #expect(result.stderr.contains("event abc: not an event id: give the payload id receivers see (a UUID"))
        #expect(result.stdout.contains("queued for redelivery"))
        #expect(try setup.count("status = 'pending' AND tries = 0") == 1)
    }

    @Test func databaseDownNamesWhereTheURLCameFrom() throws {
        let path = try temporaryFile("database: {url: 'postgres://file@127.0.0.1:9/db'}\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try runHerald(
            ["stats", "--config", path], environment: ["HERALD_DATABASE_URL": "postgres://env@127.0.0.1:9/db?connect_timeout=2"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("herald: error: cannot connect to the database: "), "\(result.stderr)")
        #expect(result.stderr.contains("(the database URL is from $HERALD_DATABASE_URL, which overrides database.url in \(path))"))
    }

    @Test func bulkRedeliveryCountsAndNeedsConfirmation() throws {
        let setup = try setUp(webhook: "http://127.0.0.1:9/never")
        try setup.connection.execute(
            script: """
                INSERT INTO items (name) SELECT 'x' FROM generate_series(1, 5);
                UPDATE herald.event_log SET status = 'failed', tries = 1, finished_at = now() WHERE id <= 3;
                """)
        let unconfirmed = try runHerald([
            "redeliver-event", "--config", setup.configPath, "--trigger", "items_hook", "--status", "failed",
        ])
        #expect(unconfirmed.status == 1)
        #expect(unconfirmed.stderr.contains("pass --yes"))
        #expect(try setup.count("status = 'failed'") == 3)
        let result = try runHerald([
            "redeliver-event", "--config", setup.configPath, "--trigger", "items_hook", "--status", "failed",
            "--since", "1h", "--yes",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("queued 3 events of trigger items_hook"))
        #expect(try setup.count("status = 'failed'") == 0)
        #expect(try setup.count("status = 'pending'") == 5)
        let none = try runHerald([
            "redeliver-event", "--config", setup.configPath, "--trigger", "items_hook", "--status", "failed",
        ])
        #expect(none.stdout.contains("no failed events"))
    }

    @Test func invokeCreatesAManualEventAndRefusesNonManualTriggers() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/ok"))
        let result = try runHerald(["invoke", "--config", setup.configPath, "items_hook", "--data", #"{"id": 7}"#])
        #expect(result.status == 0, "\(result.stderr)")
        let id = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(UUID(uuidString: id) != nil)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try receiver.stats().count == 1 }, "\(worker.log)")
        let request = try #require(try receiver.requests().first)
        #expect(request.header("webhook-id") == id)
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any])
        let event = try #require(payload["event"] as? [String: Any])
        #expect(event["op"] as? String == "MANUAL")
        #expect(((event["data"] as? [String: Any])?["new"] as? [String: Int]) == ["id": 7])
        #expect(worker.terminate() == 0)

        let badJSON = try runHerald(["invoke", "--config", setup.configPath, "items_hook", "--data", "{nope"])
        #expect(badJSON.status == 1)
        #expect(badJSON.stderr.contains("--data is not valid JSON"))
        for notARow in ["[1, 2]", "42", #""text""#] {
            let refused = try runHerald(["invoke", "--config", setup.configPath, "items_hook", "--data", notARow])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("--data must be a JSON object"))
        }

        let other = try setUp(webhook: receiver.url("/ok"), manual: false)
        let refused = try runHerald(["invoke", "--config", other.configPath, "items_hook", "--data", "{}"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("trigger 'items_hook' does not allow manual invocation"))
    }

    @Test func statsReportsQueueDepthAndLastErrorAsTableAndJSON() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/status/503"))
        try setup.connection.execute(script: "INSERT INTO items (name) SELECT 'x' FROM generate_series(1, 3)")
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'failed'") == 3 }, "\(worker.log)")
        #expect(worker.terminate() == 0)
        try setup.connection.execute(script: "INSERT INTO items (name) SELECT 'x' FROM generate_series(1, 2)")

        let json = try runHerald(["stats", "--config", setup.configPath, "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let decoded = try #require(
            try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: [[String: Any]]])
        let trigger = try #require(decoded["triggers"]?.first)
        #expect(trigger["trigger"] as? String == "items_hook")
        #expect(trigger["pending"] as? Int == 2)
        #expect(trigger["failed"] as? Int == 3)
        #expect(trigger["delivered"] as? Int == 0)
        #expect(trigger["in_flight"] as? Int == 0)
        #expect(trigger["failures_last_hour"] as? Int == 3)
        #expect((trigger["oldest_pending_age_seconds"] as? Double).map { $0 >= 0 } == true)
        #expect((trigger["last_error"] as? [String: Any])?["status_code"] as? Int == 503)

        let table = try runHerald(["stats", "--config", setup.configPath])
        #expect(table.stdout.contains("items_hook"))
        #expect(table.stdout.contains("last error items_hook"))
    }

    @Test func cleanupRemovesOnlyOldDeliveredEventsAndKeepsFailedOnes() throws {
        let setup = try setUp(webhook: "http://127.0.0.1:9/never")
        try setup.connection.execute(
            script: """
                INSERT INTO items (name) SELECT 'x' FROM generate_series(1, 12);
                UPDATE herald.event_log SET status = 'delivered', finished_at = now() - interval '10 days' WHERE id <= 6;
                UPDATE herald.event_log SET status = 'delivered', finished_at = now() WHERE id IN (7, 8);
                UPDATE herald.event_log SET status = 'failed', finished_at = now() - interval '10 days' WHERE id IN (9, 10);
                INSERT INTO herald.invocation_log (event_id, trigger_name, attempt, status_code, duration_ms)
                SELECT id, 'items_hook', 1, 200, 1 FROM herald.event_log WHERE id <= 8;
                """)
        let dryRun = try runHerald(["cleanup", "--config", setup.configPath, "--older-than", "7d", "--dry-run"])
        #expect(dryRun.stdout.contains("would remove 6 events and 6 invocation rows"))
        #expect(try setup.count("true") == 12)

        // No terminal to confirm on (the test's stdin is not one) and no --yes: nothing happens.
        let unconfirmed = try runHerald(["cleanup", "--config", setup.configPath, "--older-than", "7d"])
        #expect(unconfirmed.status != 0)
        #expect(unconfirmed.stderr.contains("remove 6 delivered events"))
        #expect(unconfirmed.stderr.contains("pass --yes"))
        #expect(try setup.count("true") == 12)
        let bare = try runHerald(["cleanup", "--config", setup.configPath, "--older-than", "7", "--yes"])
        #expect(bare.status != 0)
        #expect(bare.stderr.contains("a unit is required"))
        #expect(try setup.count("true") == 12)

        let result = try runHerald(["cleanup", "--config", setup.configPath, "--older-than", "7d", "--yes"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("removed 6 events and 6 invocation rows"))
        #expect(try setup.count("status = 'delivered'") == 2)
        #expect(try setup.count("status = 'failed'") == 2)
        #expect(try setup.count("status = 'pending'") == 2)
        #expect(try setup.connection.query("SELECT count(*) FROM herald.invocation_log")[0, 0] == "2")

        let withFailed = try runHerald(["cleanup", "--config", setup.configPath, "--older-than", "7d", "--include-failed", "--yes"])
        #expect(withFailed.stdout.contains("removed 2 events"))
        #expect(try setup.count("status = 'pending'") == 2)
    }

    @Test func cleanupWorksInBatchesLargerThanOne() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        _ = try connection.transaction { try SchemaMigrator.apply(connection) }
        try connection.execute(
            script: """
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, status, finished_at)
                SELECT 't', 'public', 'x', '{}', 'delivered', now() - interval '2 days' FROM generate_series(1, 12001);
                """)
        let report = try Retention(connection: connection).run(olderThanSeconds: 86400, scope: .delivered)
        #expect(report.events == 12001)
        #expect(try connection.query("SELECT count(*) FROM herald.event_log")[0, 0] == "0")
    }

    @Test func workerSendsReadyWatchdogAndStoppingInOrder() throws {
        let setup = try setUp(webhook: "http://127.0.0.1:9/never")
        let socket = try NotifySocket()
        let worker = try WorkerProcess(
            configPath: setup.configPath, environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "400000"])
        var messages: [String] = []
        while messages.filter({ $0 == "WATCHDOG=1" }).count < 2, let message = socket.receive() {
            messages.append(message)
        }
        #expect(worker.terminate() == 0)
        while let message = socket.receive() {
            messages.append(message)
            if message == "STOPPING=1" { break }
        }
        #expect(messages.first == "READY=1", "\(messages)")
        #expect(messages.contains { $0.hasPrefix("STATUS=delivered 0") }, "\(messages)")
        let ready = try #require(messages.firstIndex(of: "READY=1"))
        let watchdog = try #require(messages.firstIndex(of: "WATCHDOG=1"))
        #expect(ready < watchdog)
        #expect(messages.last == "STOPPING=1")
    }
}
