import Foundation
import Testing

@testable import Herald

/// Outcomes carry the lease token of the claim they answer (`EventStore.record`), against a
/// real PostgreSQL: a late outcome must never overwrite the bookkeeping of a newer lease.
@Suite("Lease tokens", .enabled(if: TestEnvironment.integrationEnabled))
struct LeaseTokenTests {
    func outcome(for event: ClaimedEvent, _ decision: RetryDecision, status: Int) -> DeliveryOutcome {
        DeliveryOutcome(
            event: event, attempt: event.tries + 1, result: .response(status: status, retryAfter: nil),
            decision: decision, requestHeaders: [], responseBody: "r\(status)", durationMilliseconds: 1)
    }

    @Test func staleOutcomeOfTheSameWorkerDoesNotOverwriteItsNewerLease() throws {
        let setup = try WorkerFixture(webhook: "http://127.0.0.1:9/never")
        try setup.insert(1)
        let store = EventStore(connection: setup.connection)
        let first = try #require(try store.claimBatch(limits: ["items_hook": 1], workerID: "w", leaseSeconds: 1).first)
        Thread.sleep(forTimeInterval: 1.2)
        // The lease ended (the outcome was late); the same worker claims the event again.
        let second = try #require(try store.claimBatch(limits: ["items_hook": 1], workerID: "w", leaseSeconds: 60).first)
        #expect(second.id == first.id)
        #expect(second.leaseToken != first.leaseToken)

        let stale = try store.record([outcome(for: first, .failed, status: 500)], workerID: "w").applied
        #expect(stale.isEmpty)
        #expect(try setup.count("status = 'pending' AND tries = 0 AND locked_by = 'w' AND locked_at IS NOT NULL") == 1)
        // The attempt did happen: it stays in the invocation log.
        #expect(try setup.invocations().map(\.status) == [500])

        let current = try store.record([outcome(for: second, .delivered, status: 200)], workerID: "w").applied
        #expect(current == [second.id])
        #expect(try setup.count("status = 'delivered' AND tries = 1 AND locked_by IS NULL") == 1)
        #expect(try setup.invocations().map(\.status) == [500, 200])
    }

    @Test func outcomeOfAnotherWorkersLeaseChangesNothing() throws {
        let setup = try WorkerFixture(webhook: "http://127.0.0.1:9/never")
        try setup.insert(1)
        let store = EventStore(connection: setup.connection)
        let mine = try #require(try store.claimBatch(limits: ["items_hook": 1], workerID: "a", leaseSeconds: 1).first)
        Thread.sleep(forTimeInterval: 1.2)
        _ = try store.claimBatch(limits: ["items_hook": 1], workerID: "b", leaseSeconds: 60)
        #expect(try store.record([outcome(for: mine, .delivered, status: 200)], workerID: "a").applied.isEmpty)
        #expect(try setup.count("status = 'pending' AND locked_by = 'b'") == 1)
    }

    /// Attempt rows have no foreign key (schema version 13): the recorder itself keeps an
    /// outcome of a deleted event out of the log, and still writes the rest of the flush.
    @Test func anOutcomeOfADeletedEventIsDroppedAndTheRestWritten() throws {
        let setup = try WorkerFixture(webhook: "http://127.0.0.1:9/never")
        try setup.insert(2)
        let store = EventStore(connection: setup.connection)
        let claimed = try store.claimBatch(limits: ["items_hook": 2], workerID: "w", leaseSeconds: 60)
        try #require(claimed.count == 2)
        try setup.connection.execute(script: "DELETE FROM herald.event_log WHERE id = \(claimed[0].id)")
        let recorded = try store.record(claimed.map { outcome(for: $0, .delivered, status: 200) }, workerID: "w")
        #expect(recorded.applied == [claimed[1].id])
        #expect(recorded.missingEvents == [claimed[0].id])
        #expect(try setup.invocations().count == 1)
        #expect(try setup.connection.query("SELECT count(*) FROM herald.invocation_log WHERE event_id = \(claimed[0].id)")[0, 0] == "0")
    }
}
