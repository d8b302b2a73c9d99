import Foundation
import Logging
import Testing

@testable import Herald

/// Capture triggers against a real PostgreSQL: what each change writes to the event log.
@Suite("Capture", .enabled(if: TestEnvironment.integrationEnabled))
struct CaptureTests {
    static let ordersTrigger = """
          - table: {schema: public, name: orders}
            event_triggers:
              - name: order_changes
                definition:
                  insert: {columns: "*"}
                  update: {columns: [status, total], payload: [id, status, total]}
                  delete: {columns: "*"}
                webhook: http://127.0.0.1:9/hook
        """

    func installOrders(_ database: TestDatabase) throws -> PGConnection {
        let connection = try database.connect()
        try connection.execute(
            script: "CREATE TABLE orders (id int PRIMARY KEY, status text, total numeric, note text)")
        try TriggerInstaller(config: try database.config(tables: Self.ordersTrigger), logger: Logger(label: "test"))
            .install(connection)
        return connection
    }

    /// Arms the wake gate on `listener`'s session, as a waiting worker does (sql/017).
    func armed(_ listener: PGConnection) throws -> Bool {
        try listener.query("SELECT herald.wake_gate_arm()").decode(Bool.self, row: 0, column: 0)
    }

    /// Notifications `listener` hears within `seconds`.
    func heard(_ listener: PGConnection, within seconds: Double = 0.5) throws -> Int {
        var count = 0
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline { count += try listener.waitForNotifications(timeoutMilliseconds: 50).count }
        return count
    }

    /// Wake-gate slots `connection`'s session holds in SHARE mode.
    func slotsHeld(by connection: PGConnection, seenFrom observer: PGConnection) throws -> Int {
        let pid = try connection.query("SELECT pg_backend_pid()")[0, 0] ?? ""
        return try observer.query(
            """
            SELECT count(*) FROM pg_locks
            WHERE locktype = 'advisory' AND classid = 1213353028 AND mode = 'ShareLock' AND granted AND pid = $1::int
            """, [pid]
        ).decode(Int.self, row: 0, column: 0)
    }

    func events(_ connection: PGConnection) throws -> [(op: String, old: String?, new: String?)] {
        let result = try connection.query(
            """
            SELECT payload->>'op', payload->'data'->>'old', payload->'data'->>'new' FROM herald.event_log ORDER BY id
            """)
        return (0..<result.rowCount).map { (result[$0, 0] ?? "", result[$0, 1], result[$0, 2]) }
    }

    @Test func insertUpdateDeleteEachProduceExactlyOneEvent() throws {
        let database = try TestDatabase()
        let connection = try installOrders(database)
        try connection.execute(script: "INSERT INTO orders VALUES (1, 'new', 10, 'n')")
        try connection.execute(script: "UPDATE orders SET status = 'paid'")
        try connection.execute(script: "DELETE FROM orders")
        let captured = try events(connection)
        #expect(captured.map(\.op) == ["INSERT", "UPDATE", "DELETE"])
        #expect(captured[0].old == nil)
        #expect(captured[0].new == #"{"id": 1, "note": "n", "total": 10, "status": "new"}"#)
        #expect(captured[1].old == #"{"id": 1, "total": 10, "status": "new"}"#)
        #expect(captured[1].new == #"{"id": 1, "total": 10, "status": "paid"}"#)
        #expect(captured[2].old == #"{"id": 1, "note": "n", "total": 10, "status": "paid"}"#)
        #expect(captured[2].new == nil)

        let row = try connection.query(
            """
            SELECT trigger_name, schema_name, table_name, status, tries, payload ? 'session_variables',
                   payload ? 'trace_context', pg_typeof(created_at)::text
            FROM herald.event_log ORDER BY id LIMIT 1
            """)
        #expect(row[0, 0] == "order_changes")
        #expect(row[0, 1] == "public")
        #expect(row[0, 2] == "orders")
        #expect(row[0, 3] == "pending")
        #expect(row[0, 4] == "0")
        #expect(row[0, 5] == "t")
        #expect(row[0, 6] == "t")
        #expect(row[0, 7] == "timestamp with time zone")
    }

    @Test func updateOfUnlistedColumnProducesNoEvent() throws {
        let database = try TestDatabase()
        let connection = try installOrders(database)
        try connection.execute(script: "INSERT INTO orders VALUES (1, 'new', 10, 'n')")
        try connection.execute(script: "UPDATE orders SET note = 'changed'")
        try connection.execute(script: "UPDATE orders SET status = 'new'")  // listed, but unchanged
        #expect(try events(connection).map(\.op) == ["INSERT"])
    }

    @Test func sessionVariablesComeFromHasuraUserSetting() throws {
        let database = try TestDatabase()
        let connection = try installOrders(database)
        try connection.execute(
            script: """
                BEGIN;
                SET LOCAL "hasura.user" = '{"x-hasura-role": "admin", "x-hasura-user-id": "7"}';
                INSERT INTO orders VALUES (1, 'new', 10, 'n');
                COMMIT;
                BEGIN;
                SET LOCAL "hasura.user" = 'not json';
                INSERT INTO orders VALUES (2, 'new', 10, 'n');
                COMMIT;
                """)
        let sessions = try connection.query(
            "SELECT payload->'session_variables' FROM herald.event_log ORDER BY id"
        ).column(0)
        #expect(sessions == [#"{"x-hasura-role": "admin", "x-hasura-user-id": "7"}"#, #""not json""#])
    }

    @Test func statementTouchingThousandRowsGivesThousandEventsAndOneNotification() throws {
        let database = try TestDatabase()
        let connection = try installOrders(database)
        try connection.execute(
            script: "INSERT INTO orders SELECT g, 'new', g, '' FROM generate_series(1, 1000) g")
        let listener = try database.connect()
        try listener.listen("herald_events")
        #expect(try armed(listener))
        try connection.execute(script: "UPDATE orders SET status = 'paid'")
        var notifications: [PGNotification] = []
        let deadline = Date().addingTimeInterval(1)
        while Date() < deadline {
            notifications += try listener.waitForNotifications(timeoutMilliseconds: 100)
        }
        #expect(notifications.count == 1)
        #expect(notifications.first?.channel == "herald_events")
        let counts = try connection.query(
            "SELECT count(*) FILTER (WHERE payload->>'op' = 'UPDATE'), count(*) FROM herald.event_log")
        #expect(counts[0, 0] == "1000")
        #expect(counts[0, 1] == "2000")
        // One row per transaction carries the wake check (schema 22), the rest none.
        let marked = try connection.query("SELECT count(*) FILTER (WHERE wake), count(*) FILTER (WHERE wake IS NULL) FROM herald.event_log")
        #expect(marked[0, 0] == "2")
        #expect(marked[0, 1] == "1998")
    }

    @Test func rolledBackTransactionLeavesNoEventAndNoNotification() throws {
        let database = try TestDatabase()
        let connection = try installOrders(database)
        let listener = try database.connect()
        try listener.listen("herald_events")
        #expect(try armed(listener))
        try connection.execute(script: "BEGIN; INSERT INTO orders VALUES (1, 'new', 1, ''); ROLLBACK;")
        #expect(try listener.waitForNotifications(timeoutMilliseconds: 300).isEmpty)
        #expect(try events(connection).isEmpty)
    }

    @Test func writersNotifyOnlyWhileAWaitingSessionHoldsTheWakeGate() throws {
        let database = try TestDatabase()
        let connection = try installOrders(database)
        let listener = try database.connect()
        try listener.listen("herald_events")
        // Nobody waits: a commit sends no NOTIFY (no database-wide lock at commit).
        try connection.execute(script: "INSERT INTO orders VALUES (1, 'new', 1, '')")
        #expect(try heard(listener) == 0)
        // A waiting worker holds the gate: each capturing transaction notifies once.
        #expect(try armed(listener))
        #expect(try slotsHeld(by: listener, seenFrom: connection) == 64)
        try connection.execute(script: "INSERT INTO orders VALUES (2, 'new', 1, '')")
        try connection.execute(script: "BEGIN; INSERT INTO orders VALUES (3, 'new', 1, ''); UPDATE orders SET total = 2; COMMIT;")
        #expect(try heard(listener) == 2)
        // Released (the worker drains a backlog and claims again at once): silence again.
        try listener.query("SELECT herald.wake_gate_disarm()")
        #expect(try slotsHeld(by: listener, seenFrom: connection) == 0)
        try connection.execute(script: "INSERT INTO orders VALUES (4, 'new', 1, '')")
        #expect(try heard(listener) == 0)
        #expect(try connection.query("SELECT count(*) FROM herald.event_log").decode(Int.self, row: 0, column: 0) == 7)
    }

    @Test func theGateCannotBeArmedWhileAWriterThatSentNothingIsCommitting() throws {
        let database = try TestDatabase()
        let connection = try installOrders(database)
        let waiter = try database.connect()
        // The writer's decision runs at commit; SET CONSTRAINTS … IMMEDIATE runs it now, so the
        // transaction holds its slot while still open, as it does while its commit is flushed.
        try connection.execute(
            script: "BEGIN; SET CONSTRAINTS herald.herald_wake IMMEDIATE; INSERT INTO orders VALUES (1, 'new', 1, '')")
        #expect(try armed(waiter) == false)
        // Refused whole: it holds none of the 64, so no writer is told to wake it yet.
        #expect(try slotsHeld(by: waiter, seenFrom: try database.connect()) == 0)
        try connection.execute(script: "COMMIT")
        // Once the writer has committed the arm succeeds, and the claim after it sees the row.
        #expect(try armed(waiter))
        #expect(try waiter.query("SELECT count(*) FROM herald.event_log").decode(Int.self, row: 0, column: 0) == 1)
    }

    @Test func aBulkInsertIntoTheLogItselfQueuesNoWakeCheck() throws {
        // Backfill, imports and redeliver insert into the log themselves and NOTIFY
        // explicitly; the wake trigger's WHEN fires only for a row a capture function marked.
        let database = try TestDatabase()
        let connection = try installOrders(database)
        let listener = try database.connect()
        try listener.listen("herald_events")
        #expect(try armed(listener))
        try connection.execute(
            script: """
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload)
                SELECT 'order_changes', 'public', 'orders', '{}' FROM generate_series(1, 1000)
                """)
        #expect(try heard(listener) == 0)
    }

    /// herald.capture_shard() (Citus shard tables) run on a plain table, as a shard's trigger
    /// calls it: the payload names the table from the arguments, the key and the column
    /// filter apply, the session and the trace context are read, and it never wakes a worker,
    /// nor lets a capture() later in the same transaction do so (two-phase commit refuses a
    /// transaction that sent NOTIFY).
    @Test func theShardCaptureNamesItsTableAndNeverWakes() throws {
        let database = try TestDatabase()
        let connection = try installOrders(database)
        try connection.execute(
            script: """
                CREATE TABLE orders_102008 (id int PRIMARY KEY, status text, total numeric, note text);
                CREATE TRIGGER shard_capture AFTER INSERT OR UPDATE OR DELETE ON orders_102008
                    FOR EACH ROW EXECUTE FUNCTION herald.capture_shard('order_changes', 'public', 'orders', '{id}', 'id', 'status');
                """)
        let listener = try database.connect()
        try listener.listen("herald_events")
        #expect(try armed(listener))
        try connection.execute(
            script: """
                BEGIN;
                SET LOCAL "hasura.user" = '{"x-hasura-role": "admin"}';
                SET LOCAL herald.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
                INSERT INTO orders_102008 VALUES (7, 'new', 10, 'secret');
                INSERT INTO orders VALUES (1, 'new', 10, 'n');
                COMMIT;
                UPDATE orders_102008 SET status = 'paid';
                DELETE FROM orders_102008;
                """)
        #expect(try heard(listener) == 0)
        let rows = try connection.query(
            """
            SELECT table_name, payload->>'op', payload->'data'->>'old', payload->'data'->>'new', ordering_key,
                   payload->'session_variables'->>'x-hasura-role', payload->'trace_context'->>'trace_id', wake
            FROM herald.event_log ORDER BY id
            """)
        #expect(rows.rowCount == 4)
        #expect((0..<rows.rowCount).map { rows[$0, 7] } == [nil, nil, nil, nil])
        #expect(rows[0, 0] == "orders")
        #expect(rows[0, 1] == "INSERT")
        #expect(rows[0, 2] == nil)
        #expect(rows[0, 3] == #"{"id": 7, "status": "new"}"#)
        #expect(rows[0, 4] == "[7]")
        #expect(rows[0, 5] == "admin")
        #expect(rows[0, 6] == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(rows[1, 0] == "orders")  // capture(), after the shard capture: no wake either
        #expect(rows[2, 1] == "UPDATE")
        #expect(rows[2, 2] == #"{"id": 7, "status": "new"}"#)
        #expect(rows[2, 3] == #"{"id": 7, "status": "paid"}"#)
        #expect(rows[2, 5] == nil)
        #expect(rows[2, 6] == nil)
        #expect(rows[3, 1] == "DELETE")
        #expect(rows[3, 2] == #"{"id": 7, "status": "paid"}"#)
        #expect(rows[3, 3] == nil)
        #expect(rows[3, 4] == "[7]")
    }
}
