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
    }

    @Test func rolledBackTransactionLeavesNoEventAndNoNotification() throws {
        let database = try TestDatabase()
        let connection = try installOrders(database)
        let listener = try database.connect()
        try listener.listen("herald_events")
        try connection.execute(script: "BEGIN; INSERT INTO orders VALUES (1, 'new', 1, ''); ROLLBACK;")
        #expect(try listener.waitForNotifications(timeoutMilliseconds: 300).isEmpty)
        #expect(try events(connection).isEmpty)
    }
}
