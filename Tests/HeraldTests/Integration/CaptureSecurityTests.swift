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

    /// The capture functions a table's trigger can run: the plain one, the ordered one, and
    /// the Citus shards' one (attached by hand, as a shard's trigger calls it, with a key and
    /// a payload column list so that every branch runs).
    enum CaptureFunction: String, CaseIterable, CustomTestStringConvertible {
        case capture, capture_ordered, capture_shard
        var testDescription: String { rawValue }
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

    func install(_ database: TestDatabase, _ function: CaptureFunction) throws {
        try install(database, ordered: function == .capture_ordered)
        guard function == .capture_shard else { return }
        try database.connect().execute(
            script: """
                ALTER TABLE orders DISABLE TRIGGER USER;
                CREATE TRIGGER shard_capture AFTER INSERT OR UPDATE ON orders FOR EACH ROW
                    EXECUTE FUNCTION herald.capture_shard('orders_changed', 'public', 'orders', '{id}', 'id', 'status');
                """)
    }

    /// A database with a captured `orders` table whose schema public anyone may create in, and
    /// an attacker role (kept alive by the returned `Roles`, which drops it afterwards).
    func attackedDatabase(_ function: CaptureFunction) throws -> (TestDatabase, Roles, String, PGConnection) {
        let database = try TestDatabase()
        let roles = Roles(database: database)
        let attacker = try roles.make("attacker")
        let connection = try database.connect()
        try connection.execute(
            script: """
                CREATE TABLE orders (id int PRIMARY KEY, status text);
                GRANT CREATE, USAGE ON SCHEMA public TO PUBLIC;
                """)
        try install(database, function)
        return (database, roles, attacker, connection)
    }

    @Test(arguments: CaptureFunction.allCases)
    func aFunctionPlantedOnThePathNeverRunsInACapture(_ function: CaptureFunction) throws {
        let (database, roles, attacker, connection) = try attackedDatabase(function)
        defer { withExtendedLifetime(roles) {} }
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

    /// Version 15 dropped the SET clause: what keeps the path out is that every operator is
    /// qualified. A writer whose path puts public before pg_catalog, with look-alike
    /// operators of the exact catalog signatures in public, must not run them in a capture.
    @Test(arguments: CaptureFunction.allCases)
    func operatorsPlantedBeforeTheCatalogNeverRunInACapture(_ function: CaptureFunction) throws {
        let (database, roles, attacker, connection) = try attackedDatabase(function)
        defer { withExtendedLifetime(roles) {} }
        // Each planted operator makes its caller promote the attacker, then answers as the real one.
        let planted: [(op: String, left: String, right: String, result: String)] = [
            ("<>", "text", "text", "boolean"), ("=", "text", "text", "boolean"), (">", "integer", "integer", "boolean"),
            ("-", "integer", "integer", "integer"), ("||", "jsonb", "jsonb", "jsonb"), ("->", "jsonb", "text", "jsonb"),
        ]
        var script = "SET ROLE \(attacker);\n"
        for (index, planting) in planted.enumerated() {
            script += """
                CREATE FUNCTION public.planted_\(index)(\(planting.left), \(planting.right)) RETURNS \(planting.result)
                LANGUAGE plpgsql AS $f$
                BEGIN
                    EXECUTE 'ALTER ROLE \(attacker) SUPERUSER';
                    RETURN $1 OPERATOR(pg_catalog.\(planting.op)) $2;
                END $f$;
                CREATE OPERATOR public.\(planting.op) (LEFTARG = \(planting.left), RIGHTARG = \(planting.right), FUNCTION = public.planted_\(index));

                """
        }
        try connection.execute(script: script + "RESET ROLE;")
        // A superuser writes with public first on its path, a session and a trace set, so
        // every branch of the capture runs.
        try connection.execute(
            script: """
                SELECT pg_catalog.set_config('hasura.user', '{"x-hasura-role": "admin"}', false),
                       pg_catalog.set_config('herald.traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', false);
                SET search_path = public, pg_catalog;
                INSERT INTO orders VALUES (1, 'new');
                UPDATE orders SET status = 'paid';
                RESET search_path;
                """)
        let superuser = try database.values("SELECT rolsuper::text FROM pg_roles WHERE rolname = $1", [attacker])
        #expect(superuser == ["false"], "a planted operator ran inside the capture")
        let payloads = try database.values(
            "SELECT payload->'data'->'new'->>'status' FROM herald.event_log ORDER BY id")
        #expect(payloads == ["new", "paid"])
        // The capture functions carry no SET clause any more (that is what this guards).
        let settings = try database.values(
            "SELECT coalesce(array_to_string(proconfig, ','), '') FROM pg_proc WHERE oid = 'herald.\(function.rawValue)()'::regprocedure")
        #expect(settings == [""])
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
