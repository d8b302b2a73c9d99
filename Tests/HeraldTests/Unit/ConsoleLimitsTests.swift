import Testing

@testable import Herald

/// The console's two bounds as pure state: the global login bucket and the database slots.
@Suite("Console limits")
struct ConsoleLimitsTests {
    @Test func loginBucketAllowsABurstThenOnePerSecondFromEveryone() {
        let start = ContinuousClock.now
        var limiter = LoginLimiter(burst: 5, perSecond: 1, now: start)
        let burst = (0..<40).map { _ in limiter.attempt(now: start) }
        #expect(burst.filter { $0 == .allowed }.count == 5)
        #expect(burst.last == .refused(retryAfterSeconds: 1))
        #expect(limiter.attempt(now: start + .milliseconds(500)) == .refused(retryAfterSeconds: 1))
        #expect(limiter.attempt(now: start + .milliseconds(1000)) == .allowed)
        #expect(limiter.attempt(now: start + .milliseconds(1100)) != .allowed)
        // Ten quiet seconds refill only up to the burst, not ten attempts.
        let later = start + .seconds(11)
        #expect((0..<10).map { _ in limiter.attempt(now: later) }.filter { $0 == .allowed }.count == 5)
    }

    @Test func aSuccessfulLoginGivesItsAttemptBack() {
        let start = ContinuousClock.now
        var limiter = LoginLimiter(burst: 2, perSecond: 0.5, now: start)
        #expect(limiter.attempt(now: start) == .allowed)
        limiter.refund(now: start)
        #expect(limiter.attempt(now: start) == .allowed)
        #expect(limiter.attempt(now: start) == .allowed)
        #expect(limiter.attempt(now: start) == .refused(retryAfterSeconds: 2))
        limiter.refund(now: start)
        limiter.refund(now: start)
        limiter.refund(now: start)
        #expect((0..<3).map { _ in limiter.attempt(now: start) }.filter { $0 == .allowed }.count == 2)
    }

    @Test func slotsGoToWaitersInOrderAndTheQueueIsBounded() {
        var admission = ConsoleAdmission<String>(slots: 2, maxWaiting: 2)
        guard case .admitted = admission.arrive("a"), case .admitted = admission.arrive("b") else {
            Issue.record("free slots were not given")
            return
        }
        guard case .queued(let c) = admission.arrive("c"), case .queued = admission.arrive("d") else {
            Issue.record("a third and fourth arrival should wait")
            return
        }
        guard case .refused = admission.arrive("e") else {
            Issue.record("a full queue should refuse")
            return
        }
        #expect(admission.release() == "c")
        // c was admitted by the release: its deadline passing must not refuse it too.
        #expect(admission.expire(c) == nil)
        #expect(admission.waiting == 1)
        #expect(admission.release() == "d")
        #expect(admission.free == 0)
        #expect(admission.release() == nil)
        #expect(admission.release() == nil)
        #expect(admission.free == 2)
    }

    @Test func aWaiterWhoseDeadlinePassesLeavesTheQueue() {
        var admission = ConsoleAdmission<String>(slots: 1, maxWaiting: 4)
        _ = admission.arrive("a")
        guard case .queued(let b) = admission.arrive("b"), case .queued = admission.arrive("c") else {
            Issue.record("arrivals beyond the slot should wait")
            return
        }
        #expect(admission.expire(b) == "b")
        #expect(admission.release() == "c")
    }

    @Test func gateRefusesWorkBeyondItsSlotsAfterTheWait() async throws {
        let gate = ConsoleGate(slots: 1, maxWait: .milliseconds(50))
        let (held, hold) = AsyncStream<Void>.makeStream()
        let (entered, enter) = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await gate.withSlot {
                enter.yield()
                for await _ in held { break }
            }
        }
        for await _ in entered { break }
        await #expect(throws: ConsoleGate.Busy.self) { try await gate.withSlot { () } }
        hold.yield()
        try await holder.value
        try await gate.withSlot { () }
    }
}
