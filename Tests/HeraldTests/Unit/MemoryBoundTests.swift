import Foundation
import Synchronization
import Testing

@testable import Herald

/// What must not grow with the number of events a worker has handled.
@Suite("Memory bounds")
struct MemoryBoundTests {
    /// The process's resident memory (`/proc/self/statm`). Other suites run in the same
    /// process, so a bound is checked as the least growth over a few rounds: a leak shows
    /// in every round, another test's allocations do not.
    static func residentBytes() -> Int {
        let text = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
        let pages = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func leastGrowth(rounds: Int = 3, _ body: () -> Void) -> Int {
        body()  // warm up whatever is made once
        var least = Int.max
        for _ in 0..<rounds {
            let before = residentBytes()
            body()
            least = min(least, residentBytes() - before)
        }
        return least
    }

    /// Every claim that finds work wakes the delivery threads. Copying the wake-up closure out
    /// of its lock left 32 bytes behind per wake (heaptrack, release build): +0.25 MiB a minute
    /// at 1,500 events/s. A million wakes (32 MB if they leaked) must not keep 8 MB.
    @Test func wakingTheDeliveryThreadsAllocatesNothingThatStays() {
        let flow = FlowController(
            limits: .init(
                poolSize: 10, perHostLimit: 10, fetchBatchSize: 10, leaseSeconds: 60, recorderBacklogLimit: 100,
                pollInterval: .seconds(5)),
            routes: [FlowRoute(trigger: "t", hostKey: "a", timeout: .seconds(5))])
        final class Count: Sendable { let value = Atomic<Int>(0) }
        let wakes = Count()
        flow.setDeliveryWake { wakes.value.add(1, ordering: .relaxed) }
        let grown = Self.leastGrowth { for _ in 0..<1_000_000 { flow.wakeDelivery() } }
        #expect(wakes.value.load(ordering: .relaxed) == 4_000_000)
        #expect(grown < 8 << 20, "a million wakes kept \(grown) bytes")
    }
}
