import Foundation
import Testing

@testable import Herald

/// The payload index holds finished events only (schema version 13): a containment search
/// still finds pending events (through the pending partial indexes) and finished ones
/// (through the GIN index), and never reads the whole log to do it.
@Suite("Payload search", .enabled(if: TestEnvironment.integrationEnabled))
struct PayloadSearchTests {
    @Test func containmentFindsPendingAndFinishedEventsThroughIndexesOnly() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        _ = try connection.transaction { try SchemaMigrator.apply(connection) }
        try connection.execute(
            script: """
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, status, tries)
                SELECT 't', 'public', 'orders', jsonb_build_object('op', 'INSERT', 'data', jsonb_build_object('new', jsonb_build_object('id', g))),
                       CASE WHEN g % 1000 = 7 THEN 'pending' WHEN g % 1000 = 8 THEN 'failed' ELSE 'delivered' END, 1
                FROM generate_series(1, 100000) g;
                UPDATE herald.event_log SET ordering_key = '[1]' WHERE status = 'pending' AND payload @> '{"data":{"new":{"id":2007}}}';
                ANALYZE herald.event_log;
                """)
        let index = try connection.query(
            "SELECT pg_get_indexdef('herald.event_log_payload'::regclass)").decode(String.self, row: 0, column: 0)
        #expect(index.contains("WHERE (status <> 'pending'::text)"), "\(index)")

        let key = EventIDKey(bytes: Array(0..<32), v2From: 1)
        for (id, status) in [(1007, "pending"), (2007, "pending"), (5008, "failed"), (5009, "delivered")] {
            let (conditions, parameters) = try EventFilter(trigger: "t", query: #"{"data":{"new":{"id":\#(id)}}}"#)
                .conditions(key: key, keyColumns: [])
            let sql = "SELECT status FROM herald.event_log WHERE " + conditions.joined(separator: " AND ")
            let plan = try connection.query("EXPLAIN " + sql, parameters).column(0).compactMap { $0 }.joined(separator: "\n")
            #expect(!plan.contains("Seq Scan"), "\(plan)")
            #expect(plan.contains("event_log_payload"), "\(plan)")
            #expect(try connection.query(sql, parameters).column(0) == [status], "event \(id)")
        }
        // A key typed into the search box (id or payload key) finds the pending event too.
        let (conditions, parameters) = try EventFilter(query: "1007").conditions(key: key, keyColumns: ["id"])
        let found = try connection.query(
            "SELECT status FROM herald.event_log WHERE " + conditions.joined(separator: " AND "), parameters
        ).column(0)
        #expect(found.contains("pending"), "\(found)")
    }
}
