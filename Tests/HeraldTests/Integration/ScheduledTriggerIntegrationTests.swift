import Foundation
import Testing

@testable import Herald

/// Cron triggers and one-off scheduled events against a real PostgreSQL, real workers and a
/// real receiver. Cron ticks are real minutes, so these tests take a few minutes each; they
/// run beside the others.
@Suite("Scheduled triggers (integration)", .enabled(if: TestEnvironment.integrationEnabled))
struct ScheduledTriggerIntegrationTests {
    static func cronYAML(_ receiver: Receiver, names: [String], tolerance: Int = 21600, retries: Int = 0) -> String {
        "cron_triggers:\n"
            + names.map { name in
                """
                  - name: \(name)
                    webhook: \(receiver.url("/ok/\(name)"))
                    schedule: "* * * * *"
                    payload: {job: \(name), n: 1}
                    retry_conf: {num_retries: \(retries), retry_interval_seconds: 1, timeout_seconds: 5, tolerance_seconds: \(tolerance)}
                    comment: every minute
                """
            }.joined(separator: "\n")
    }

    static func cronRequests(_ receiver: Receiver) throws -> [Receiver.Request] {
        try receiver.requests().filter { $0.path.hasPrefix("/ok/cron_") }
    }

    static func body(_ request: Receiver.Request) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(request.body.utf8))) as? [String: Any] ?? [:]
    }

    /// Seconds to the next minute boundary.
    static func secondsToNextMinute() -> Double {
        let now = Date().timeIntervalSince1970
        return 60 - now.truncatingRemainder(dividingBy: 60)
    }

    @Test func twoWorkersDeliverEachTickExactlyOnceEvenWhenOneIsKilledAtATick() throws {
        let receiver = try Receiver()
        let fixture = try WorkerFixture(
            webhook: receiver.url("/ok/items"), extraTrigger: Self.cronYAML(receiver, names: ["cron_a", "cron_b"]))
        let first = try WorkerProcess(configPath: fixture.configPath)
        let second = try WorkerProcess(configPath: fixture.configPath)
        // The first tick (both workers race to log it), then kill one just before the second.
        #expect(eventually(timeout: 75) { (try? Self.cronRequests(receiver).count) ?? 0 >= 2 })
        let wait = Self.secondsToNextMinute() - 0.3
        if wait > 0 { Thread.sleep(forTimeInterval: wait) }
        first.killHard()
        #expect(eventually(timeout: 75) { (try? Self.cronRequests(receiver).count) ?? 0 >= 4 })
        // A third tick with a restarted worker beside the survivor.
        let third = try WorkerProcess(configPath: fixture.configPath)
        #expect(eventually(timeout: 75) { (try? Self.cronRequests(receiver).count) ?? 0 >= 6 })
        Thread.sleep(forTimeInterval: 1)
        _ = second.terminate()
        _ = third.terminate()

        let requests = try Self.cronRequests(receiver)
        let ids = requests.compactMap { $0.header("webhook-id") }
        #expect(Set(ids).count == ids.count, "a tick was delivered twice: \(ids)")
        var ticks: [String: Set<String>] = [:]
        for request in requests {
            let body = Self.body(request)
            let name = body["name"] as? String ?? ""
            let time = body["scheduled_time"] as? String ?? ""
            #expect(ticks[name, default: []].insert(time).inserted, "\(name) \(time) delivered twice")
            #expect(body["id"] as? String == request.header("webhook-id"))
            #expect((body["payload"] as? [String: Any])?["job"] as? String == name)
            #expect(body["comment"] as? String == "every minute")
            // Due within a second of its time.
            if let scheduled = ScheduledEventDecoder.parseTime(time) {
                #expect(request.time - scheduled.timeIntervalSince1970 < 1.0, "\(name) \(time) arrived late")
                #expect(request.time >= scheduled.timeIntervalSince1970)
            }
        }
        #expect(ticks["cron_a"]?.count ?? 0 >= 3)
        #expect(ticks["cron_b"]?.count ?? 0 >= 3)
        // One tick row and one event per tick, however many workers raced.
        let rows = try fixture.count("trigger_name IN ('cron_a', 'cron_b')")
        let tickRows = Int(try fixture.database.values("SELECT count(*) FROM herald.cron_ticks")[0] ?? "") ?? -1
        #expect(rows == tickRows)
        #expect(try fixture.count("trigger_name IN ('cron_a', 'cron_b') AND status <> 'delivered'") == 0)
    }

    /// The state every worker leaves behind when they all stop: the newest logged tick. Seeded
    /// ten minutes back, it stands for ten minutes in which no worker ran: the ticks at 9…0
    /// minutes ago are due; with a tolerance of 210 s past the current minute's start, the
    /// ticks 4…9 minutes ago are missed and 0…3 are delivered.
    @Test func ticksWhileEveryWorkerWasDownAreDeliveredWithinToleranceAndRecordedMissedBeyond() throws {
        // Keep clear of a minute boundary, so the current minute stays the same throughout.
        if 60 - Self.secondsToNextMinute() > 40 { Thread.sleep(forTimeInterval: Self.secondsToNextMinute() + 1) }
        let intoMinute = Int(60 - Self.secondsToNextMinute())
        let receiver = try Receiver()
        let fixture = try WorkerFixture(
            webhook: receiver.url("/ok/items"),
            extraTrigger: Self.cronYAML(receiver, names: ["cron_down"], tolerance: 210 + intoMinute))
        try fixture.connection.query(
            """
            INSERT INTO herald.cron_ticks (trigger_name, scheduled_time, outcome)
            VALUES ('cron_down', date_trunc('minute', now()) - interval '10 minutes', 'created')
            """)
        let worker = try WorkerProcess(configPath: fixture.configPath)
        #expect(eventually(timeout: 20) {
            (try? fixture.database.values("SELECT count(*) FROM herald.cron_ticks WHERE outcome = 'missed'")[0]) == "6"
        })
        #expect(eventually(timeout: 20) { (try? Self.cronRequests(receiver).count) ?? 0 >= 4 })
        Thread.sleep(forTimeInterval: 1)
        let requests = try Self.cronRequests(receiver)
        let times = requests.map { Self.body($0)["scheduled_time"] as? String ?? "" }
        #expect(Set(times).count == times.count, "a tick was delivered twice")
        #expect(times.count == 4)
        // Missed ticks are visible: a log line and `herald scheduled`.
        #expect(worker.log.contains("cron ticks missed"))
        let listing = try runHerald(["scheduled", "--config", fixture.configPath, "--json"])
        #expect(listing.status == 0, "\(listing.stderr)")
        #expect(listing.stdout.contains("\"missed_total\" : 6"))
        _ = worker.terminate()
        // A restart changes nothing: the ticks are logged once.
        let again = try WorkerProcess(configPath: fixture.configPath)
        Thread.sleep(forTimeInterval: 3)
        _ = again.terminate()
        let after = try Self.cronRequests(receiver).map { Self.body($0)["scheduled_time"] as? String ?? "" }
        #expect(Set(after).count == after.count)
        #expect(try fixture.database.values("SELECT count(*) FROM herald.cron_ticks WHERE outcome = 'missed'")[0] == "6")
    }

    @Test func scheduleEventExistsOnlyIfItsTransactionCommitsAndIsSentAtItsTime() throws {
        let receiver = try Receiver()
        let fixture = try WorkerFixture(webhook: receiver.url("/ok/items"))
        let worker = try WorkerProcess(configPath: fixture.configPath)
        let app = try fixture.database.connect()
        try app.execute(script: "BEGIN")
        try app.query("SELECT herald.schedule_event($1, now())", [receiver.url("/ok/rolled-back")])
        try app.execute(script: "ROLLBACK")
        try app.execute(script: "BEGIN")
        let id = try app.query(
            """
            SELECT herald.schedule_event($1, now() + interval '3 seconds', '{"user": 42}',
                                         '[{"name": "X-Kind", "value": "reminder"}]', '{"num_retries": 1}', 'remind')::text
            """, [receiver.url("/ok/one-off")])[0, 0] ?? ""
        let scheduledAt = Date().addingTimeInterval(3)
        try app.execute(script: "COMMIT")
        #expect(eventually(timeout: 15) { (try? receiver.requests().contains { $0.path == "/ok/one-off" }) ?? false })
        let requests = try receiver.requests()
        #expect(!requests.contains { $0.path == "/ok/rolled-back" })
        let request = try #require(requests.first { $0.path == "/ok/one-off" })
        #expect(request.header("webhook-id") == id)
        #expect(request.header("X-Kind") == "reminder")
        #expect(request.time >= scheduledAt.timeIntervalSince1970 - 0.05)
        #expect(request.time - scheduledAt.timeIntervalSince1970 < 1.5)
        let body = Self.body(request)
        #expect(body["id"] as? String == id)
        #expect((body["payload"] as? [String: Any])?["user"] as? Int == 42)
        #expect(body["comment"] as? String == "remind")
        #expect(body["name"] == nil)
        #expect(eventually { (try? fixture.count("trigger_name = '@scheduled' AND status = 'delivered'")) == 1 })
        _ = worker.terminate()
    }

    @Test func cancelEventStopsAPendingOneAndTheCLISchedulesAndLists() throws {
        let receiver = try Receiver()
        let fixture = try WorkerFixture(webhook: receiver.url("/ok/items"))
        let scheduled = try runHerald([
            "schedule-event", "--config", fixture.configPath, "--webhook", receiver.url("/ok/later"), "--at", "1h",
            "--payload", #"{"a": 1}"#, "--header", "X-One: 1", "--comment", "cancel me", "--retries", "2",
        ])
        #expect(scheduled.status == 0, "\(scheduled.stderr)")
        let id = scheduled.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(UUID(uuidString: id) != nil)
        let soon = try runHerald([
            "schedule-event", "--config", fixture.configPath, "--webhook", receiver.url("/ok/soon"), "--at", "now",
        ])
        #expect(soon.status == 0, "\(soon.stderr)")
        let listing = try runHerald(["scheduled", "--config", fixture.configPath])
        #expect(listing.stdout.contains(id))
        #expect(listing.stdout.contains("# cancel me"))
        let cancelled = try runHerald(["cancel-event", "--config", fixture.configPath, id])
        #expect(cancelled.status == 0, "\(cancelled.stderr)")
        #expect(cancelled.stdout.contains("event \(id) cancelled"))
        let again = try runHerald(["cancel-event", "--config", fixture.configPath, id])
        #expect(again.status != 0)
        #expect(again.stderr.contains("no such event"))
        // A captured change is not a scheduled event.
        try fixture.insert(1)
        let captured = try #require(try fixture.database.values("SELECT id FROM herald.event_log WHERE trigger_name = 'items_hook'").first ?? nil)
        let refused = try runHerald(["cancel-event", "--config", fixture.configPath, captured])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("use skip-event"))
        // Bad input names the culprit.
        let bad = try runHerald([
            "schedule-event", "--config", fixture.configPath, "--webhook", "ftp://x", "--at", "now",
        ])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("webhook must be an http:// or https:// URL"))
        let worker = try WorkerProcess(configPath: fixture.configPath)
        #expect(eventually { (try? receiver.requests().contains { $0.path == "/ok/soon" }) ?? false })
        Thread.sleep(forTimeInterval: 0.5)
        _ = worker.terminate()
        #expect(try !receiver.requests().contains { $0.path == "/ok/later" })
        #expect(try fixture.count("trigger_name = '@scheduled'") == 1)
    }

    @Test func aOneOffEventPastItsToleranceIsRecordedMissedNotSent() throws {
        let receiver = try Receiver()
        let fixture = try WorkerFixture(webhook: receiver.url("/ok/items"))
        try fixture.connection.query(
            "SELECT herald.schedule_event($1, now() - interval '2 minutes', NULL, '[]', '{\"tolerance_seconds\": 60}')",
            [receiver.url("/ok/stale")])
        let worker = try WorkerProcess(configPath: fixture.configPath)
        #expect(eventually { (try? fixture.count("trigger_name = '@scheduled' AND status = 'failed'")) == 1 })
        _ = worker.terminate()
        #expect(try !receiver.requests().contains { $0.path == "/ok/stale" })
        #expect(try fixture.invocations().map(\.errorClass) == ["missed"])
    }
}

extension ScheduledTriggerIntegrationTests {
    /// Hasura's scheduled work at the switch, in its metadata catalog: cron trigger `cron_m`
    /// (every minute) with a delivered tick, an undelivered one that failed once, and the
    /// next minute's tick Hasura had already made; a cron trigger this configuration does not
    /// name; one-off events delivered, due, due with a header from the environment, and in an
    /// hour. Meanwhile the application keeps inserting rows that Hasura's trigger captures.
    @Test func migrateFromHasuraMovesPendingCronAndOneOffEventsWithNoneLostOrTwice() throws {
        // The next minute's tick must still be ahead when the migration runs.
        if Self.secondsToNextMinute() < 12 { Thread.sleep(forTimeInterval: Self.secondsToNextMinute() + 1) }
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(script: "CREATE TABLE items (id int PRIMARY KEY, name text)")
        try HasuraCatalog.install(connection)
        try HasuraCatalog.installScheduled(connection)
        try HasuraCatalog.addTrigger(connection, name: "items_hook", table: "items", operation: "INSERT")
        let receiver = try Receiver()
        let ids = try connection.query(
            """
            WITH cron AS (
                INSERT INTO hdb_catalog.hdb_cron_events (trigger_name, scheduled_time, status, tries, next_retry_at)
                VALUES ('cron_m', date_trunc('minute', now()) - interval '2 minutes', 'delivered', 1, NULL),
                       ('cron_m', date_trunc('minute', now()) - interval '1 minute', 'scheduled', 1, now() - interval '1 second'),
                       ('cron_m', date_trunc('minute', now()) + interval '1 minute', 'scheduled', 0, NULL),
                       ('not_mine', date_trunc('minute', now()) + interval '1 minute', 'scheduled', 0, NULL)
                RETURNING id, trigger_name, status, scheduled_time),
            one_off AS (
                INSERT INTO hdb_catalog.hdb_scheduled_events
                    (webhook_conf, scheduled_time, retry_conf, payload, header_conf, status, comment)
                VALUES (to_json($1::text), now() - interval '1 hour', NULL, '{"n": 1}', NULL, 'delivered', 'done'),
                       (to_json($2::text), now() - interval '5 seconds',
                        '{"num_retries":0,"retry_interval_seconds":10,"timeout_seconds":60,"tolerance_seconds":21600}',
                        '{"n": 2}', '[{"name": "X-Plain", "value": "p"}]', 'scheduled', 'due'),
                       ('{"from_env": "HASURA_ONE_OFF_URL"}', now() - interval '2 seconds', NULL, '{"n": 3}',
                        '[{"name": "X-Token", "value_from_env": "ONE_OFF_TOKEN"}]', 'scheduled', NULL),
                       (to_json($3::text), now() + interval '1 hour', NULL, '{"n": 4}', NULL, 'scheduled', 'later')
                RETURNING id, comment)
            SELECT 'cron ' || trigger_name || ' ' || status || ' ' || herald_time, id FROM
                (SELECT id, trigger_name, status, to_char(scheduled_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS herald_time FROM cron) c
            UNION ALL SELECT 'one-off ' || coalesce(comment, 'env'), id FROM one_off
            """, [receiver.url("/ok/one-off-done"), receiver.url("/ok/one-off-due"), receiver.url("/ok/one-off-later")])
        var hasuraID: [String: String] = [:]
        for row in 0..<ids.rowCount { hasuraID[ids[row, 0] ?? ""] = ids[row, 1] }
        #expect(hasuraID.count == 8)
        let path = try temporaryFile(
            """
            database: {url: '\(database.url)'}
            worker: {fetch_interval_ms: 100, lease_seconds: 90}
            stats: {listen: ""}
            tables:
              - table: {schema: public, name: items}
                event_triggers:
                  - name: items_hook
                    definition: {insert: {columns: "*"}}
                    webhook: \(receiver.url("/ok/items"))
            cron_triggers:
              - {name: cron_m, webhook: "\(receiver.url("/ok/cron_m"))", schedule: "* * * * *", payload: {from: hasura}}
            """)
        let environment = ["HASURA_ONE_OFF_URL": receiver.url("/ok/one-off-env"), "ONE_OFF_TOKEN": "t0ken"]
        let writer = ApplicationWriter(url: database.url, table: "items", firstID: 1)
        Thread.sleep(forTimeInterval: 0.3)
        let migration = try runHerald(["migrate-from-hasura", "--config", path], environment: environment)
        Thread.sleep(forTimeInterval: 0.3)
        let (committed, failures) = writer.stop()
        #expect(migration.status == 0, "\(migration.stderr)")
        #expect(failures.isEmpty)
        #expect(migration.stdout.contains("moved 2 pending Hasura cron events and 3 one-off scheduled events"))
        #expect(migration.stdout.contains("left 1 pending events of cron trigger not_mine"))

        let worker = try WorkerProcess(configPath: path, environment: environment)
        defer { _ = worker.terminate() }
        // The undelivered tick and the due one-off events go out at once, with Hasura's ids.
        #expect(eventually(timeout: 20) {
            let paths = (try? receiver.requests().map(\.path)) ?? []
            return paths.contains("/ok/cron_m") && paths.contains("/ok/one-off-due") && paths.contains("/ok/one-off-env")
                && paths.filter { $0 == "/ok/items" }.count >= committed.count
        })
        // The tick Hasura had made for the next minute goes out at its time, once, as Hasura's.
        #expect(eventually(timeout: Self.secondsToNextMinute() + 10) {
            ((try? receiver.requests().filter { $0.path == "/ok/cron_m" }.count) ?? 0) >= 2
        })
        Thread.sleep(forTimeInterval: 1.5)
        let requests = try receiver.requests()
        let cron = requests.filter { $0.path == "/ok/cron_m" }
        let sentIDs = cron.compactMap { $0.header("webhook-id") }
        let cronIDs = try database.values(
            "SELECT id FROM hdb_catalog.hdb_cron_events WHERE trigger_name = 'cron_m' ORDER BY scheduled_time")
        #expect(cronIDs.count == 3)
        // The delivered tick is not sent again; the undelivered and the future one are, as Hasura's.
        #expect(Set(sentIDs).isSuperset(of: [cronIDs[1] ?? "-", cronIDs[2] ?? "-"]))
        #expect(!sentIDs.contains(cronIDs[0] ?? "-"))
        let times = cron.map { Self.body($0)["scheduled_time"] as? String ?? "" }
        #expect(Set(times).count == times.count, "a tick was sent twice: \(times)")
        let due = try #require(requests.first { $0.path == "/ok/one-off-due" })
        #expect(due.header("webhook-id") == hasuraID["one-off due"])
        #expect(due.header("X-Plain") == "p")
        #expect(Self.body(due)["comment"] as? String == "due")
        let fromEnv = try #require(requests.first { $0.path == "/ok/one-off-env" })
        #expect(fromEnv.header("X-Token") == "t0ken")
        #expect(!requests.contains { $0.path == "/ok/one-off-done" || $0.path == "/ok/one-off-later" })
        #expect(try database.values("SELECT payload ->> 'comment' FROM herald.event_log WHERE trigger_name = '@scheduled' AND status = 'pending'") == ["later"])
        // Every committed row delivered exactly once, by Hasura's moved event or Herald's capture.
        let items = requests.filter { $0.path == "/ok/items" }
        let rowIDs = items.compactMap { ((Self.body($0)["event"] as? [String: Any])?["data"] as? [String: Any]).flatMap { ($0["new"] as? [String: Any])?["id"] as? Int } }
        #expect(rowIDs.sorted() == committed.sorted())
        #expect(try database.values("SELECT status FROM hdb_catalog.hdb_cron_events WHERE trigger_name = 'not_mine'") == ["scheduled"])
    }
}
