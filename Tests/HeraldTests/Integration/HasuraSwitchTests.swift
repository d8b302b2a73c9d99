import Foundation
import Logging
import Testing

@testable import Herald

/// Switching from Hasura against a real PostgreSQL: a metadata export installs as it is, the
/// capture behaves as Hasura's does, and migrate-from-hasura takes over a live database.
@Suite("Switching from Hasura", .enabled(if: TestEnvironment.integrationEnabled))
struct HasuraSwitchTests {
    let logger = Logger(label: "test")

    @Test func metadataExportFixtureInstallsOnARealDatabase() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(
            script: """
                CREATE TABLE users (id int PRIMARY KEY, email text);
                CREATE TABLE orders (id int PRIMARY KEY, user_id int, status text, total numeric);
                CREATE TABLE tags (id int PRIMARY KEY);
                CREATE SCHEMA billing;
                CREATE TABLE billing."InvoiceLines" (id int PRIMARY KEY, amount numeric, note text);
                """)
        let config = try ConfigLoader.load(
            path: Fixtures.metadataConfig, environment: Fixtures.metadataEnvironment(databaseURL: database.url))
        let plan = try TriggerInstaller(config: config, logger: logger).install(connection)
        #expect(
            plan.create.map(\.name).sorted() == [
                "herald_InvoiceLineChanged_update", "herald_order_changes_insert", "herald_order_changes_update",
                "herald_order_deleted_delete", "herald_user-signup_insert",
            ])
        // trigger_on_replication: fires for replicated rows too.
        let enabled = try connection.query(
            "SELECT tgname, tgenabled FROM pg_trigger WHERE tgname LIKE 'herald_%' ORDER BY tgname")
        #expect(enabled[0, 0] == "herald_InvoiceLineChanged_update")
        #expect(enabled[0, 1] == "A")
        #expect(enabled[1, 1] == "O")
        #expect(try TriggerInstaller(config: config, logger: logger).install(connection).isEmpty)

        try connection.execute(
            script: """
                INSERT INTO users VALUES (1, 'a@example.com');
                UPDATE users SET email = 'b@example.com';
                INSERT INTO billing."InvoiceLines" VALUES (1, 10, 'x');
                UPDATE billing."InvoiceLines" SET note = 'y';
                """)
        let events = try connection.query(
            "SELECT trigger_name, payload->'data'->>'new' FROM herald.event_log ORDER BY id")
        #expect(events.column(0) == ["user-signup", "InvoiceLineChanged"])
        #expect(events[1, 1] == #"{"id": 1, "amount": 10}"#)
    }

    func installItems(_ database: TestDatabase, update: String) throws -> PGConnection {
        let connection = try database.connect()
        try connection.execute(
            script: "CREATE TABLE items (id int PRIMARY KEY, name text, doc json, spot point, n int)")
        let config = try database.config(
            tables: """
                  - table: {schema: public, name: items}
                    event_triggers:
                      - name: items_hook
                        definition: {insert: {columns: "*"}, update: \(update)}
                        webhook: http://127.0.0.1:9/hook
                """)
        try TriggerInstaller(config: config, logger: logger).install(connection)
        return connection
    }

    func updateCount(_ connection: PGConnection) throws -> Int {
        Int(try connection.query("SELECT count(*) FROM herald.event_log WHERE payload->>'op' = 'UPDATE'")[0, 0] ?? "") ?? -1
    }

    @Test func noOpUpdateProducesNoEventEvenWithJsonAndPointColumns() throws {
        let database = try TestDatabase()
        let connection = try installItems(database, update: #"{columns: "*"}"#)
        try connection.execute(script: #"INSERT INTO items VALUES (1, 'a', '{"k": 1}', '(1,2)', 1)"#)
        try connection.execute(script: "UPDATE items SET name = name, doc = doc, spot = spot")
        #expect(try updateCount(connection) == 0)
        try connection.execute(script: "UPDATE items SET n = 2")
        try connection.execute(script: #"UPDATE items SET doc = '{"k": 2}'"#)
        #expect(try updateCount(connection) == 2)
    }

    @Test func updateWithAColumnListFiresOnlyWhenAListedColumnChanged() throws {
        let database = try TestDatabase()
        let connection = try installItems(database, update: "{columns: [name]}")
        try connection.execute(script: "INSERT INTO items (id, name, n) VALUES (1, 'a', 1)")
        try connection.execute(script: "UPDATE items SET name = 'a', n = 5")
        #expect(try updateCount(connection) == 0)
        try connection.execute(script: "UPDATE items SET name = 'b'")
        #expect(try updateCount(connection) == 1)
    }

    @Test func traceContextComesFromHasurasSettingOrAW3CTraceparent() throws {
        let database = try TestDatabase()
        let connection = try installItems(database, update: #"{columns: "*"}"#)
        try connection.execute(
            script: """
                BEGIN;
                SET LOCAL hasura.tracecontext = '{"trace_id": "abc", "span_id": "def"}';
                INSERT INTO items (id) VALUES (1);
                COMMIT;
                BEGIN;
                SET LOCAL herald.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
                INSERT INTO items (id) VALUES (2);
                COMMIT;
                INSERT INTO items (id) VALUES (3);
                """)
        let traces = try connection.query("SELECT payload->'trace_context' FROM herald.event_log ORDER BY id").column(0)
        #expect(traces[0] == #"{"span_id": "def", "trace_id": "abc"}"#)
        let w3c = try #require(traces[1])
        #expect(w3c.contains(#""trace_id": "4bf92f3577b34da6a3ce929d0e0e4736""#))
        #expect(w3c.contains(#""span_id": "00f067aa0ba902b7""#))
        #expect(w3c.contains(#""sampling_state": "1""#))
        #expect(traces[2] == "null")
    }

    @Test func triggerCleanupDeletesOnlyItsOwnOldFinishedEvents() async throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(script: "CREATE TABLE items (id int PRIMARY KEY, name text)")
        try TriggerInstaller(config: try database.config(tables: ""), logger: logger).install(connection)
        try connection.execute(
            script: """
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, status, finished_at)
                SELECT t, 'public', 'items', '{}', s, now() - make_interval(hours => h)
                FROM (VALUES ('a', 'delivered', 48), ('a', 'failed', 48), ('a', 'delivered', 1),
                             ('b', 'delivered', 48)) AS v(t, s, h);
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload)
                VALUES ('a', 'public', 'items', '{}');
                """)
        var cleanup = CleanupConfig(schedule: try CronSchedule("0 * * * *"), clearOlderThanHours: 24)
        cleanup.batchSize = 1
        await TriggerCleanupService.clean(
            .init(trigger: "a", cleanup: cleanup), databaseURL: database.url, logger: logger)
        let left = try connection.query("SELECT trigger_name || ':' || status FROM herald.event_log ORDER BY id")
        #expect(left.column(0) == ["a:delivered", "b:delivered", "a:pending"])
    }

    @Test func operatorCommandsOnADatabaseWithoutHeraldSayToInstall() throws {
        let database = try TestDatabase()
        let error = #expect(throws: PGError.self) { _ = try EventAdmin(connection: database.connect()) }
        #expect(error?.message.contains("run herald install-triggers") == true)
    }

    // MARK: migrate-from-hasura

    static let itemsConfig = """
          - table: {schema: public, name: items}
            event_triggers:
              - name: items_hook
                definition: {insert: {columns: "*"}, update: {columns: "*"}}
                retry_conf: {num_retries: 3, interval_sec: 0, timeout_sec: 5}
                webhook: WEBHOOK
        """

    /// A database Hasura served: its catalog, its triggers on `items` for INSERT and UPDATE,
    /// and 20 events: 5 delivered, 3 errored, 2 retried twice, 10 never tried.
    func hasuraDatabase() throws -> (TestDatabase, PGConnection) {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(script: "CREATE TABLE items (id int PRIMARY KEY, name text)")
        try HasuraCatalog.install(connection)
        try HasuraCatalog.addTrigger(connection, name: "items_hook", table: "items", operation: "INSERT")
        try HasuraCatalog.addTrigger(connection, name: "items_hook", table: "items", operation: "UPDATE")
        try HasuraCatalog.addTrigger(connection, name: "other_hook", table: "items", operation: "DELETE")
        try connection.execute(
            script: """
                INSERT INTO items SELECT g, 'before' FROM generate_series(1, 20) g;
                UPDATE hdb_catalog.event_log SET delivered = true, tries = 1
                    WHERE (payload->'data'->'new'->>'id')::int <= 5;
                UPDATE hdb_catalog.event_log SET error = true, tries = 4
                    WHERE (payload->'data'->'new'->>'id')::int BETWEEN 6 AND 8;
                UPDATE hdb_catalog.event_log SET tries = 2, next_retry_at = now() - interval '1 second'
                    WHERE (payload->'data'->'new'->>'id')::int BETWEEN 9 AND 10;
                """)
        return (database, connection)
    }

    @Test func dryRunReportsTheMigrationAndChangesNothing() throws {
        let (database, connection) = try hasuraDatabase()
        let config = try database.config(tables: Self.itemsConfig.replacingOccurrences(of: "WEBHOOK", with: "http://127.0.0.1:9/x"))
        let report = try HasuraMigration(config: config, logger: logger).run(connection, dryRun: true)
        #expect(report.movedEvents == ["items_hook": 12])
        #expect(report.droppedHasuraTriggers == ["public.items: notify_hasura_items_hook_INSERT", "public.items: notify_hasura_items_hook_UPDATE"])
        #expect(try database.values("SELECT to_regclass('herald.event_log')::text") == [nil])
        #expect(try database.values("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'notify_hasura_%'") == ["3"])
        #expect(try database.values("SELECT count(*) FROM hdb_catalog.event_log WHERE archived") == ["0"])
    }

    @Test func commandLineMigrationPrintsItsSummaryAndASecondRunMovesNothing() throws {
        let (database, _) = try hasuraDatabase()
        let path = try temporaryFile(
            "database: {url: '\(database.url)'}\ntables:\n"
                + Self.itemsConfig.replacingOccurrences(of: "WEBHOOK", with: "http://127.0.0.1:9/x") + "\n")
        let dryRun = try runHerald(["migrate-from-hasura", "--config", path, "--dry-run"])
        #expect(dryRun.status == 0, "\(dryRun.stderr)")
        #expect(dryRun.stdout.contains("dry run: nothing was changed"))
        #expect(dryRun.stdout.contains("moved 12 undelivered Hasura events"))
        #expect(try database.values("SELECT count(*) FROM hdb_catalog.event_log WHERE archived") == ["0"])

        let first = try runHerald(["migrate-from-hasura", "--config", path])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("dropped Hasura trigger public.items: notify_hasura_items_hook_INSERT"))
        #expect(first.stdout.contains("moved 12 undelivered Hasura events"))
        #expect(first.stdout.contains("remove these event triggers from Hasura's metadata"))
        let second = try runHerald(["migrate-from-hasura", "--config", path])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("moved 0 undelivered Hasura events"))
        #expect(try database.values("SELECT count(*) FROM herald.event_log") == ["12"])
    }

    @Test func eventsHasuraIsDeliveringStopTheMigration() throws {
        let (database, connection) = try hasuraDatabase()
        try connection.execute(
            script: "UPDATE hdb_catalog.event_log SET locked = now() WHERE (payload->'data'->'new'->>'id')::int = 12")
        let config = try database.config(tables: Self.itemsConfig.replacingOccurrences(of: "WEBHOOK", with: "http://127.0.0.1:9/x"))
        let error = #expect(throws: MigrationError.self) {
            try HasuraMigration(config: config, logger: logger).run(connection, dryRun: false)
        }
        #expect(error?.code == .hasuraStillDelivering)
        #expect(try database.values("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'notify_hasura_%'") == ["3"])
        #expect(try database.values("SELECT to_regclass('herald.event_log')::text") == [nil])
    }

    @Test func liveDatabaseIsMigratedWithNoEventLostAndNoneDeliveredTwice() throws {
        let (database, connection) = try hasuraDatabase()
        let receiver = try Receiver()
        let tables = Self.itemsConfig.replacingOccurrences(of: "WEBHOOK", with: receiver.url("/ok"))
        let config = try database.config(tables: tables)
        let pendingHasuraIDs = Set(
            try database.values(
                "SELECT id FROM hdb_catalog.event_log WHERE NOT delivered AND NOT error ORDER BY id"
            ).compactMap { $0 })
        #expect(pendingHasuraIDs.count == 12)

        let writer = ApplicationWriter(url: database.url, table: "items", firstID: 1000)
        #expect(eventually { writer.count >= 50 })
        let report = try HasuraMigration(config: config, logger: logger).run(connection, dryRun: false)
        let atMigration = writer.count
        #expect(eventually { writer.count >= atMigration + 50 })
        let (committed, failures) = writer.stop()
        #expect(failures.isEmpty, "\(failures.prefix(3))")
        #expect(report.leftInHasura.isEmpty)
        #expect(report.droppedHasuraTriggers.count == 2)

        // Every committed row has exactly one live event: Hasura's if it captured the row and
        // it was already finished there, Herald's otherwise.
        let herald = try connection.query(
            "SELECT (payload->'data'->'new'->>'id')::int, imported_id::text, tries FROM herald.event_log")
        var heraldRows: [Int: Int] = [:]
        for row in 0..<herald.rowCount { heraldRows[Int(herald[row, 0] ?? "") ?? -1, default: 0] += 1 }
        let finishedInHasura = Set(
            try database.values(
                "SELECT (payload->'data'->'new'->>'id')::int FROM hdb_catalog.event_log WHERE delivered OR error"
            ).compactMap { $0.flatMap { Int($0) } })
        for id in committed + Array(1...20) {
            let live = (heraldRows[id] ?? 0) + (finishedInHasura.contains(id) ? 1 : 0)
            #expect(live == 1, "row \(id) has \(live) events")
        }
        #expect(
            try database.values(
                "SELECT count(*) FROM hdb_catalog.event_log WHERE NOT delivered AND NOT error AND NOT archived")
                == ["0"])
        #expect(report.movedEvents["items_hook"] ?? 0 >= pendingHasuraIDs.count)
        #expect(try database.values("SELECT tries FROM herald.event_log WHERE (payload->'data'->'new'->>'id')::int = 9") == ["2"])

        // Delivery: every event once, the moved ones under Hasura's ids.
        let configPath = try temporaryFile(
            "database: {url: '\(database.url)'}\nstats: {listen: \"\"}\ntables:\n\(tables)\n")
        let worker = try WorkerProcess(configPath: configPath)
        let total = herald.rowCount
        #expect(
            try eventually(timeout: 30) {
                try database.values("SELECT count(*) FROM herald.event_log WHERE status = 'delivered'") == ["\(total)"]
            }, "\(worker.log)")
        #expect(worker.terminate() == 0)
        let requests = try receiver.requests()
        let webhookIDs = requests.compactMap { $0.header("webhook-id") }
        #expect(webhookIDs.count == total)
        #expect(Set(webhookIDs).count == total)
        let importedIDs = Set((0..<herald.rowCount).compactMap { herald[$0, 1] })
        #expect(importedIDs.count == report.movedEvents["items_hook"])
        #expect(importedIDs.isSubset(of: Set(webhookIDs)))
        #expect(pendingHasuraIDs.isSubset(of: importedIDs))
        for request in requests {
            let body = try #require(try JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any])
            #expect(body["id"] as? String == request.header("webhook-id"))
        }
    }
}
