import Foundation
import Logging
import Testing

@testable import Herald

/// Issue findings 1 and 1b against a real PostgreSQL: a function planted on the writer's
/// search_path never runs inside a capture, writers need no grant on schema herald, and
/// nobody but Herald's owner can write events or attach the capture functions.
@Suite("Capture security", .enabled(if: TestEnvironment.integrationEnabled))
struct CaptureSecurityTests {
    let logger = Logger(label: "test")

    /// Cluster-wide roles with unique names, dropped with everything they own.
    final class Roles {
        let database: TestDatabase
        var names: [String] = []
        init(database: TestDatabase) { self.database = database }

        func make(_ prefix: String) throws -> String {
            let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
            try database.connect().execute(script: "CREATE ROLE \(name) NOLOGIN")
            names.append(name)
            return name
        }

        deinit {
            guard let connection = try? database.connect() else { return }
            for name in names {
                try? connection.execute(script: "DROP OWNED BY \(name) CASCADE; DROP ROLE \(name)")
            }
        }
    }

    func install(_ database: TestDatabase, ordered: Bool) throws {
        let config = try database.config(
            tables: """
                  - table: orders
                    event_triggers:
                      - name: orders_changed
                        definition: {insert: {columns: "*"}, update: {columns: "*"}}
                        webhook: http://127.0.0.1:9/hook
                        \(ordered ? "ordering: {key: primary_key}" : "")
                """)
        try TriggerInstaller(config: config, logger: logger).install(try database.connect())
    }

    @Test(arguments: [false, true])
    func aFunctionPlantedOnThePathNeverRunsInACapture(ordered: Bool) throws {
        let database = try TestDatabase()
        let roles = Roles(database: database)
        let attacker = try roles.make("attacker")
        let connection = try database.connect()
        try connection.execute(
            script: """
                CREATE TABLE orders (id int PRIMARY KEY, status text);
                GRANT CREATE, USAGE ON SCHEMA public TO PUBLIC;
                """)
        try install(database, ordered: ordered)
        // The attacker shadows to_jsonb for the table's row type: an exact match beats
        // pg_catalog's polymorphic to_jsonb(anyelement) on an unpinned path.
        try connection.execute(
            script: """
                SET ROLE \(attacker);
                CREATE FUNCTION public.to_jsonb(public.orders) RETURNS jsonb LANGUAGE plpgsql AS $f$
                BEGIN
                    EXECUTE 'ALTER ROLE \(attacker) SUPERUSER';
                    RETURN '{}'::jsonb;
                END $f$;
                RESET ROLE;
                """)
        // A superuser writes the captured table.
        try connection.execute(script: "INSERT INTO orders VALUES (1, 'new'); UPDATE orders SET status = 'paid'")
        let superuser = try database.values("SELECT rolsuper::text FROM pg_roles WHERE rolname = $1", [attacker])
        #expect(superuser == ["false"], "the planted function ran inside the capture")
        let payloads = try database.values(
            "SELECT payload->'data'->'new'->>'status' FROM herald.event_log ORDER BY id")
        #expect(payloads == ["new", "paid"])
    }

    @Test func writersNeedNoGrantOnHeraldAndCannotForgeEvents() throws {
        let database = try TestDatabase()
        let roles = Roles(database: database)
        let writer = try roles.make("writer")
        let connection = try database.connect()
        try connection.execute(
            script: """
                CREATE TABLE orders (id int PRIMARY KEY, status text);
                GRANT SELECT, INSERT, UPDATE ON orders TO \(writer);
                CREATE SCHEMA writer_own AUTHORIZATION \(writer);
                """)
        try install(database, ordered: false)

        // Only table grants: the capture works.
        try connection.execute(script: "SET ROLE \(writer); INSERT INTO orders VALUES (1, 'new'); RESET ROLE")
        #expect(try database.values("SELECT count(*) FROM herald.event_log") == ["1"])

        // A hand-written event, or the capture function attached to a table of the
        // writer's own, is refused.
        func refused(_ sql: String) throws -> String {
            do {
                try connection.execute(script: "SET ROLE \(writer); \(sql)")
                try connection.execute(script: "RESET ROLE")
                return "accepted"
            } catch let error as PGError {
                try connection.execute(script: "ROLLBACK; RESET ROLE")
                return error.message
            }
        }
        #expect(
            try refused(
                "INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload) VALUES ('orders_changed', 'public', 'orders', '{}')"
            ).contains("permission denied for schema herald"))
        #expect(
            try refused(
                """
                CREATE TABLE writer_own.decoy (id int);
                CREATE TRIGGER forge AFTER INSERT ON writer_own.decoy FOR EACH ROW EXECUTE FUNCTION herald.capture('orders_changed')
                """
            ).contains("permission denied"))
        #expect(try database.values("SELECT count(*) FROM herald.event_log") == ["1"])
    }
}
