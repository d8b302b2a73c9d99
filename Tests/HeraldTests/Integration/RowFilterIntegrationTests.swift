import Foundation
import Logging
import Testing

@testable import Herald

/// `filter:` against a real PostgreSQL: only matching changes become events, and a bad
/// filter stops `install-triggers` (dry run included) naming the trigger.
@Suite("Row filters", .enabled(if: TestEnvironment.integrationEnabled))
struct RowFilterIntegrationTests {
    let logger = Logger(label: "test")

    func events(_ database: TestDatabase, trigger: String) throws -> Int {
        Int(try database.values("SELECT count(*) FROM herald.event_log WHERE trigger_name = $1", [trigger])[0] ?? "") ?? -1
    }

    @Test func onlyMatchingRowsBecomeEvents() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(
            script: """
                CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, total int NOT NULL);
                CREATE SCHEMA "Sales Data";
                CREATE TABLE "Sales Data"."Order Items" (id int PRIMARY KEY, "Status Code" text);
                """)
        let config = try database.config(
            tables: """
                  - table: {schema: public, name: orders}
                    event_triggers:
                      - name: orders_paid
                        definition: {insert: {columns: "*"}, update: {columns: "*"}, delete: {columns: "*"}}
                        webhook: http://127.0.0.1:9/hook
                        filter: NEW.status = 'paid' AND OLD.status IS DISTINCT FROM NEW.status
                  - table: {schema: "Sales Data", name: "Order Items"}
                    event_triggers:
                      - name: items_voided
                        definition: {insert: {columns: "*"}, delete: {columns: "*"}}
                        webhook: http://127.0.0.1:9/hook
                        filter:
                          delete: OLD."Status Code" = 'void'
                """)
        try TriggerInstaller(config: config, logger: logger).install(connection)

        // 10,000 rows, 100 of them paid: 100 events.
        try connection.execute(
            script: """
                INSERT INTO orders SELECT g, CASE WHEN g % 100 = 0 THEN 'paid' ELSE 'open' END, g FROM generate_series(1, 10000) g
                """)
        #expect(try events(database, trigger: "orders_paid") == 100)
        // Updates that do not make a row paid create none (the paid rows stay paid).
        try connection.execute(script: "UPDATE orders SET total = total + 1")
        #expect(try events(database, trigger: "orders_paid") == 100)
        // Five rows become paid: five events; their deletes do not match (NEW is null).
        try connection.execute(script: "UPDATE orders SET status = 'paid' WHERE id BETWEEN 1 AND 5")
        try connection.execute(script: "DELETE FROM orders WHERE id <= 10")
        #expect(try events(database, trigger: "orders_paid") == 105)
        let statuses = try database.values(
            "SELECT DISTINCT payload->'data'->'new'->>'status' FROM herald.event_log WHERE trigger_name = 'orders_paid'")
        #expect(statuses == ["paid"])

        // Names that need quoting; operations the mapping does not name are not filtered.
        try connection.execute(
            script: #"""
                INSERT INTO "Sales Data"."Order Items" VALUES (1, 'void'), (2, 'ok');
                DELETE FROM "Sales Data"."Order Items";
                """#)
        let voided = try database.values(
            "SELECT payload->>'op' || ':' || coalesce(payload->'data'->'old'->>'id', payload->'data'->'new'->>'id') FROM herald.event_log WHERE trigger_name = 'items_voided' ORDER BY id")
        #expect(voided == ["INSERT:1", "INSERT:2", "DELETE:1"])
    }

    @Test func anInvalidFilterStopsInstallNamingTheTrigger() throws {
        let database = try TestDatabase()
        try database.connect().execute(script: "CREATE TABLE orders (id int PRIMARY KEY, status text, total int)")
        let yaml = """
            database: {url: '\(database.url)'}
            tables:
              - table: orders
                event_triggers:
                  - name: fine
                    definition: {insert: {columns: "*"}}
                    webhook: http://127.0.0.1:9/hook
                    filter: NEW.total > 10
                  - name: typo
                    definition: {insert: {columns: "*"}}
                    webhook: http://127.0.0.1:9/hook
                    filter: NEW.stauts = 'paid'
                  - name: not_boolean
                    definition: {update: {columns: "*"}}
                    webhook: http://127.0.0.1:9/hook
                    filter: NEW.total + 1
            """
        let path = try temporaryFile(yaml)
        for arguments in [["install-triggers", "--config", path, "--dry-run"], ["install-triggers", "--config", path]] {
            let result = try runHerald(arguments)
            #expect(result.status == 1, "\(arguments)")
            #expect(result.stderr.contains("trigger typo's filter is not a valid condition on table public.orders (insert)"))
            #expect(result.stderr.contains(#"column "stauts" not found"#))
            #expect(result.stderr.contains("trigger not_boolean's filter"))
            #expect(result.stderr.contains("must be type boolean"))
            #expect(!result.stderr.contains("trigger fine"))
        }
        let installed = try database.values("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal")
        #expect(installed == ["0"])
    }
}
