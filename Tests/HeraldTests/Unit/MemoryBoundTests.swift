import Foundation
import Synchronization
import Testing

@testable import Herald

/// What must not grow with the number of events a worker has handled.
@Suite("Memory bounds")
struct MemoryBoundTests {
    /// Bytes the allocator has handed out and not had back (mallinfo2). Other suites run in
    /// the same process, so a bound is checked as the least growth over a few rounds: a leak
    /// shows in every round, another test's allocations do not.
    static func heldBytes() -> Int { ProcessMemory.current().heapInUseBytes }

    static func leastGrowth(rounds: Int = 3, _ body: () -> Void) -> Int {
        body()  // warm up whatever is made once
        var least = Int.max
        for _ in 0..<rounds {
            let before = heldBytes()
            body()
            least = min(least, heldBytes() - before)
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

    /// A database or receiver that fails with a new text every time (ids, timestamps in the
    /// message) must not grow the log throttle.
    @Test func theErrorLogThrottleRemembersAtMostItsCapacity() {
        var throttle = ErrorLogThrottle(interval: .seconds(30))
        let now = ContinuousClock.now
        for number in 0..<100_000 {
            _ = throttle.admit("relation \"t_\(number)\" does not exist", now: now)
            #expect(throttle.trackedCount <= ErrorLogThrottle.capacity)
        }
    }

    /// An ordered trigger over a million keys keeps one cursor, not one per key.
    @Test func keyCursorsKeepOneEntryPerTriggerWhateverTheKeys() {
        var cursors = KeyCursors()
        for batch in 0..<10_000 {
            let claimed = (0..<100).map { offset in
                ClaimedEvent(
                    id: Int64(batch * 100 + offset), triggerName: batch % 2 == 0 ? "a" : "b",
                    table: TableName(schema: "public", name: "t"), payload: "{}", tries: 0, createdAt: "",
                    createdAtEpoch: 0, orderingKey: "[\(batch * 100 + offset)]")
            }
            _ = cursors.advance(asked: ["a": 100, "b": 100], claimed: claimed)
        }
        #expect(cursors.starts.count <= 2)
    }

    /// A dead endpoint failing 100,000 events in one window: the digest keeps a count and at
    /// most `keyLimit` ids and triggers, not every id.
    @Test func anAlertDigestWindowKeepsACountNotEveryID() {
        var digest = AlertDigest(intervalSeconds: 60, individualLimit: 5, keyLimit: 10)
        let now = ContinuousClock.now
        for number in 0..<100_000 {
            _ = digest.admit(
                PendingAlert(
                    alert: .eventFailed(
                        trigger: "t\(number % 1000)", eventID: "event-\(number)", eventNumber: Int64(number),
                        table: TableName(schema: "public", name: "orders"), op: "INSERT", tries: 1, lastStatus: 500,
                        errorClass: "http", error: "HTTP 500", createdAt: "2026-11-23T17:00:00Z"),
                    occurredAt: Date()),
                now: now)
        }
        #expect(digest.windows.count == 1)
        let window = digest.windows.values.first
        #expect(window?.folded == 100_000 - 5)
        #expect((window?.firstKeys.count ?? 0) <= 10 && (window?.triggers.count ?? 0) <= 10)
    }

    @Test func theResidentSetIsReadFromStatmInPages() {
        #expect(ProcessMemory.residentBytes(statm: "12345 678 90 1 0 2 0\n", pageSize: 4096) == 678 * 4096)
        #expect(ProcessMemory.residentBytes(statm: "", pageSize: 4096) == 0)
        #expect(ProcessMemory.residentBytes(statm: "12345 x", pageSize: 4096) == 0)
    }

    @Test func theAllocatorsStatisticsSeeABlockHeldAndFreed() {
        let before = ProcessMemory.current()
        let size = 64 << 20
        let block = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        let held = ProcessMemory.current()
        block.deallocate()
        // Other tests allocate and free meanwhile: a margin of a quarter of the block.
        #expect(held.heapInUseBytes - before.heapInUseBytes >= size * 3 / 4)
        #expect(held.residentBytes > 0)
    }

    /// Freed blocks between blocks still in use stay resident until trimmed: 4,000 freed
    /// 8 kB blocks, each between two kept ones, are about 32 MB the allocator cannot give
    /// back from the top. Best of three rounds, as other suites allocate meanwhile.
    @Test func freePagesBetweenLiveBlocksAreGivenBack() {
        var released = 0
        for _ in 0..<3 {
            var freed: [UnsafeMutableRawPointer] = []
            var kept: [UnsafeMutableRawPointer] = []
            for _ in 0..<4_000 {
                let block = UnsafeMutableRawPointer.allocate(byteCount: 8_192, alignment: 16)
                block.initializeMemory(as: UInt8.self, repeating: 1, count: 8_192)
                freed.append(block)
                kept.append(UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16))
            }
            freed.forEach { $0.deallocate() }
            let before = ProcessMemory.current().residentBytes
            ProcessMemory.releaseFreePages()
            released = max(released, before - ProcessMemory.current().residentBytes)
            kept.forEach { $0.deallocate() }
        }
        #expect(released >= 8 << 20, "released \(released) bytes")
    }
}

/// The stats endpoint formats its own `Date` header (see ``TimerFreeHTTPService``).
@Suite("HTTP Date header")
struct HTTPDateTests {
    @Test func formatsRFC9110Example() {
        #expect(HTTPDate.format(Date(timeIntervalSince1970: 784_111_777)) == "Sun, 06 Nov 1994 08:49:37 GMT")
    }

    @Test func padsAndCountsEveryField() {
        // 2026-01-02 03:04:05 UTC, a Friday; and the last second of a leap year's last day.
        #expect(HTTPDate.format(Date(timeIntervalSince1970: 1_767_323_045)) == "Fri, 02 Jan 2026 03:04:05 GMT")
        #expect(HTTPDate.format(Date(timeIntervalSince1970: 1_735_689_599.9)) == "Tue, 31 Dec 2024 23:59:59 GMT")
    }
}
