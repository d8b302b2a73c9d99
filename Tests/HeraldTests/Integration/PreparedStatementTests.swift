import Foundation
import Testing

@testable import Herald

/// The worker's hot statements (claims, outcomes, attempt rows) are prepared once per session:
/// once only, kept across transactions that roll back, still right after the tables they
/// read change, and not remembered when preparing failed.
@Suite("Prepared statements", .enabled(if: TestEnvironment.integrationEnabled))
struct PreparedStatementTests {
    private static let countMatching = PGStatement(
        name: "test_count_matching", sql: "SELECT count(*) FROM prepared_probe WHERE id = ANY ($1::int[])")

    private func preparedCount(_ connection: PGConnection, _ name: String) throws -> Int {
        try connection.query("SELECT count(*) FROM pg_prepared_statements WHERE name = $1", [name])
            .decode(Int.self, row: 0, column: 0)
    }

    @Test func aStatementIsPreparedOnceAndOutlivesRollbacksAndSchemaChanges() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(script: "CREATE TABLE prepared_probe (id int); INSERT INTO prepared_probe VALUES (1), (2), (3)")

        #expect(try preparedCount(connection, Self.countMatching.name) == 0)
        try connection.execute(script: "BEGIN")
        #expect(try connection.query(Self.countMatching, ["{1,2}"]).decode(Int.self, row: 0, column: 0) == 2)
        try connection.execute(script: "ROLLBACK")
        #expect(try preparedCount(connection, Self.countMatching.name) == 1, "kept after the rollback")

        // The table changes under the prepared statement: PostgreSQL replans it.
        try connection.execute(
            script: "ALTER TABLE prepared_probe ADD COLUMN note text; CREATE INDEX ON prepared_probe (id); "
                + "INSERT INTO prepared_probe (id, note) VALUES (2, 'again')")
        for _ in 0..<8 {  // past the executions after which PostgreSQL may keep a generic plan
            #expect(try connection.query(Self.countMatching, ["{2,3}"]).decode(Int.self, row: 0, column: 0) == 3)
        }
        #expect(try preparedCount(connection, Self.countMatching.name) == 1, "prepared once, executed by name")

        // A new session starts with nothing prepared and prepares again.
        let other = try database.connect()
        #expect(try other.query(Self.countMatching, ["{1}"]).decode(Int.self, row: 0, column: 0) == 1)
    }

    @Test func aStatementThatCannotBePreparedIsNotRemembered() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let statement = PGStatement(name: "test_later", sql: "SELECT count(*) FROM prepared_later")
        var failure: PGError?
        do { _ = try connection.query(statement) } catch { failure = error }
        #expect(failure?.sqlState == "42P01")
        #expect(failure?.query?.contains("prepared_later") == true, "the error names the statement")

        try connection.execute(script: "CREATE TABLE prepared_later (id int)")
        #expect(try connection.query(statement).decode(Int.self, row: 0, column: 0) == 0)
    }

    @Test func theClaimerPlansEachClaimStatementOnceAndClaimsRightWithThatPlan() throws {
        let setup = try WorkerFixture(webhook: "http://127.0.0.1:9/never")
        let claimer = try setup.database.connect()
        let store = EventStore(connection: claimer)
        try store.prepareWorkerSession(.claimer)
        #expect(try claimer.query("SHOW plan_cache_mode")[0, 0] == "force_generic_plan")
        try setup.insert(40)
        var claimed: [Int64] = []
        for round in 0..<8 {
            // Alternately with and without the key walk, so both statements run.
            let batch = try store.claimBatch(
                limits: ["items_hook": 5], keyed: round % 2 == 0 ? [] : ["items_hook"], workerID: "w", leaseSeconds: 30)
            #expect(batch.count == 5)
            claimed += batch.map(\.id)
        }
        #expect(Set(claimed).count == 40, "every event once, oldest first")
        #expect(claimed == claimed.sorted())
        let plans = try claimer.query(
            """
            SELECT name, generic_plans, custom_plans FROM pg_prepared_statements
            WHERE name IN ('herald_claim', 'herald_claim_unkeyed') ORDER BY name
            """)
        #expect(plans.rowCount == 2)
        for row in 0..<plans.rowCount {
            #expect(try plans.decode(Int.self, row: row, column: 2) == 0, "\(plans[row, 0] ?? "") planned per call")
            #expect(try plans.decode(Int.self, row: row, column: 1) == 4)
        }
        // The recorder's session keeps PostgreSQL's own choice.
        let recorder = try setup.database.connect()
        try EventStore(connection: recorder).prepareWorkerSession(.recorder)
        #expect(try recorder.query("SHOW plan_cache_mode")[0, 0] == "auto")
    }
}
