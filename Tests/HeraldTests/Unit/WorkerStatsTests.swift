import Foundation
import Testing

@testable import Herald

/// One delivery turn's outcomes are counted in one call: totals, per-trigger counts (keyed
/// by source too) and latencies come out as if each outcome had been counted alone.
@Suite("Worker stats")
struct WorkerStatsTests {
    func outcome(_ trigger: String, source: String = SourceConfig.defaultName, decision: RetryDecision, age: Double = 2)
        -> DeliveryOutcome
    {
        var event = ClaimedEvent(
            id: 1, triggerName: trigger, table: TableName(schema: "public", name: "t"), payload: "{}", tries: 0,
            createdAt: "", createdAtEpoch: Date().timeIntervalSince1970 - age)
        event.source = source
        let status = decision == .delivered ? 200 : 500
        return DeliveryOutcome(
            event: event, attempt: 1, result: .response(status: status, retryAfter: nil), decision: decision,
            requestHeaders: [], responseBody: nil, durationMilliseconds: 3)
    }

    @Test func aTurnsOutcomesAreCountedPerTriggerAndSource() {
        let stats = WorkerStats(metrics: HeraldMetrics(triggerNames: ["a", "b"]))
        stats.recordDeliveries([
            outcome("a", decision: .delivered), outcome("a", decision: .delivered),
            outcome("b", decision: .retry(afterSeconds: 5)), outcome("a", decision: .failed),
            outcome("a", source: "other", decision: .delivered), outcome("b", decision: .deferred),
            outcome("b", decision: .blocked),
        ])
        stats.recordDeliveries([])
        stats.recordDeliveries([outcome("a", decision: .delivered, age: 4)])
        let total = stats.current(inFlight: 0)
        #expect(total.delivered == 4)
        #expect(total.retried == 2)
        #expect(total.failed == 2)
        let triggers = stats.perTrigger()
        #expect(Set(triggers.keys) == ["a", "b", "other/a"])
        #expect(triggers["a"]?.delivered == 3)
        #expect(triggers["a"]?.failed == 1)
        #expect(triggers["b"]?.retried == 2)
        #expect(triggers["b"]?.failed == 1)
        #expect(triggers["other/a"]?.delivered == 1)
        let latencies = triggers["a"]?.latencies.sorted() ?? []
        #expect(latencies.count == 3)
        #expect(latencies.allSatisfy { $0 >= 1.9 && $0 < 5 })
        #expect((latencies.last ?? 0) >= 3.9)
    }
}
