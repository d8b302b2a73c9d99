import Foundation
import Testing

@testable import Herald

/// The overview's counts on a log too large to count on every page view.
@Suite("Console overview", .enabled(if: TestEnvironment.integrationEnabled))
struct ConsoleOverviewTests {
    @Test func largeLogKeepsActionableCountsExactAndEstimatesDelivered() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        _ = try connection.transaction { try SchemaMigrator.apply(connection) }
        let total = QueueStats.exactCountLimit + 20_000
        try connection.execute(
            script: """
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, status)
                SELECT CASE WHEN g % 4 = 0 THEN 'b' ELSE 'a' END, 'public', 'orders', '{}',
                       CASE WHEN g % 1000 = 1 THEN 'failed' WHEN g % 500 = 2 THEN 'pending' ELSE 'delivered' END
                FROM generate_series(1, \(total)) g;
                ANALYZE herald.event_log;
                """)
        let admin = try EventAdmin(connection: connection)
        let overview = try EventBrowser(admin).overview(configured: ["a", "b"])
        let exact = try QueueStats.read(connection, configured: ["a", "b"])
        for (estimated, counted) in zip(overview.triggers, exact.triggers) {
            #expect(estimated.trigger == counted.trigger)
            #expect(estimated.pending == counted.pending)
            #expect(estimated.failed == counted.failed)
            #expect(estimated.deliveredIsEstimate)
            // Statistics come from a sample: close, not equal.
            #expect(abs(estimated.delivered - counted.delivered) < counted.delivered / 10, "\(estimated) vs \(counted)")
        }
    }

    @Test func smallLogIsCountedExactly() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        _ = try connection.transaction { try SchemaMigrator.apply(connection) }
        try connection.execute(
            script: """
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, status)
                SELECT 'a', 'public', 'orders', '{}', 'delivered' FROM generate_series(1, 10);
                ANALYZE herald.event_log;
                """)
        let overview = try EventBrowser(try EventAdmin(connection: connection)).overview(configured: ["a"])
        #expect(overview.triggers.first?.delivered == 10)
        #expect(overview.triggers.first?.deliveredIsEstimate == false)
    }
}
