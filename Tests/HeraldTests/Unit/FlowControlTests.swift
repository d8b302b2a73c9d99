import Testing

@testable import Herald

/// Every transition of the worker's flow control, without threads, sockets or a clock.
@Suite("Flow control")
struct FlowControlTests {
    struct Job: FlowJob, Equatable {
        var id: Int
        var hostKey: String
        var triggerName: String
        var startDeadline: ContinuousClock.Instant
        var sourceName = SourceConfig.defaultName
    }

    let t0 = ContinuousClock.now

    func limits(
        pool: Int = 100, perHost: Int = 100, batch: Int = 100, lease: Int = 300, backlog: Int = 1000,
        poll: Duration = .seconds(1)
    ) -> FlowControl<Job>.Limits {
        .init(
            poolSize: pool, perHostLimit: perHost, fetchBatchSize: batch, leaseSeconds: lease,
            recorderBacklogLimit: backlog, pollInterval: poll)
    }

    func route(_ trigger: String, _ host: String, timeout: Int = 10) -> FlowRoute {
        FlowRoute(trigger: trigger, hostKey: host, timeout: .seconds(timeout))
    }

    func jobs(_ count: Int, trigger: String, host: String, from first: Int = 0, deadline: Duration = .seconds(200))
        -> [Job]
    {
        (first..<first + count).map { Job(id: $0, hostKey: host, triggerName: trigger, startDeadline: t0 + deadline) }
    }

    func claimLimits(_ plan: FlowControl<Job>.ClaimPlan) -> [String: Int]? {
        if case .claim(let limits) = plan { return limits }
        return nil
    }

    @Test func batchLargerThanPoolNeverLeavesTheThreadAsleepWithStartableJobs() {
        var flow = FlowControl<Job>(limits: limits(pool: 16, batch: 200), routes: [route("t", "a")], now: t0)
        let plan1 = flow.planClaim(now: t0).plan
        #expect(claimLimits(plan1) == ["t": 200])
        let wakesDelivery2 = flow.claimed(jobs(200, trigger: "t", host: "a"), limits: ["t": 200])
        #expect(wakesDelivery2)
        let first = flow.takeStartable(freeSlots: 16, now: t0)
        #expect(first.start.map(\.id) == Array(0..<16))
        #expect(flow.inFlightTotal == 16 && flow.queuedTotal == 184)
        #expect(flow.pollTimeout(freeSlots: 0, now: t0) > .zero)
        // Every running transfer finished in one pass: jobs are startable, so no sleep.
        _ = flow.finished(hostKeys: Array(repeating: "a", count: 16), now: .now)
        #expect(flow.pollTimeout(freeSlots: 16, now: t0) == .zero)
        let turn3 = flow.takeStartable(freeSlots: 16, now: t0)
        #expect(turn3.start.map(\.id) == Array(16..<32))
    }

    /// A thousand cron ticks at once: a thousand triggers on one host, one due event each.
    /// Consecutive claims ask for disjoint triggers, so the burst takes ten claims of a
    /// hundred, not one new trigger per claim after the first.
    @Test func manyTriggersWithOneDueEventEachAreClaimedInDisjointWindows() {
        let names = (0..<1000).map { "cron_\($0)" }
        var flow = FlowControl<Job>(limits: limits(batch: 100), routes: names.map { route($0, "a") }, now: t0)
        var asked = Set<String>()
        var claims = 0
        var id = 0
        while let limits = claimLimits(flow.planClaim(now: t0).plan), claims < 30 {
            claims += 1
            #expect(limits.values.allSatisfy { $0 == 1 })
            let fresh = Set(limits.keys).subtracting(asked)
            asked.formUnion(limits.keys)
            // Each trigger had one event: the ones asked before now return none.
            var got: [Job] = []
            for name in fresh {
                got.append(Job(id: id, hostKey: "a", triggerName: name, startDeadline: t0 + .seconds(200)))
                id += 1
            }
            _ = flow.claimed(got, limits: limits)
            // Keep the host hungry, as a delivery thread would.
            let turn = flow.takeStartable(freeSlots: 100, now: t0)
            _ = flow.finished(hostKeys: turn.start.map(\.hostKey), now: .now)
            if asked.count == 1000 { break }
        }
        #expect(asked.count == 1000)
        #expect(claims == 10)
    }

    @Test func twoTriggersStillAlternateFirstPlace() {
        var flow = FlowControl<Job>(limits: limits(pool: 1, perHost: 1, batch: 1), routes: [route("a", "h"), route("b", "h")], now: t0)
        var firsts: [String] = []
        for _ in 0..<4 {
            guard let limits = claimLimits(flow.planClaim(now: t0).plan) else { break }
            firsts += limits.keys.sorted()
            _ = flow.claimed([], limits: [:])
            flow.notified()
        }
        #expect(Set(firsts) == ["a", "b"])
    }

    @Test func claimerWaitsForRoomAndIsWokenWhenTheQueueRunsLow() {
        var flow = FlowControl<Job>(limits: limits(pool: 16, batch: 200), routes: [route("t", "a")], now: t0)
        // A full claim: more may be due, but a batch (half the host's prefetch) is queued,
        // so the claimer waits for room.
        var claimedSoFar = 0
        while let asked = claimLimits(flow.planClaim(now: t0).plan)?["t"], claimedSoFar < 1000 {
            _ = flow.claimed(jobs(asked, trigger: "t", host: "a", from: claimedSoFar), limits: ["t": asked])
            claimedSoFar += asked
        }
        #expect(claimedSoFar == 200)
        let plan4 = flow.planClaim(now: t0).plan
        #expect(plan4 == .wait(until: nil))
        var woken = false
        var rounds = 0
        while !woken && rounds < 40 {
            let turn = flow.takeStartable(freeSlots: 16, now: t0)
            woken = turn.wakeClaimer || flow.finished(hostKeys: turn.start.map(\.hostKey), now: .now)
            rounds += 1
        }
        #expect(woken)
        // Woken when the queue fell below one batch (half the prefetch), with a batch still
        // queued while the next claim runs.
        #expect(flow.queuedTotal < 200)
        #expect(flow.queuedTotal >= 180)
        let limits = claimLimits(flow.planClaim(now: t0).plan)
        #expect((limits?["t"] ?? 0) > 0)
        #expect((limits?["t"] ?? 0) <= 200)
    }

    @Test func theClaimerIsWokenOnlyOnceWhileItWaits() {
        var flow = FlowControl<Job>(limits: limits(pool: 4, batch: 4), routes: [route("t", "a")], now: t0)
        _ = flow.planClaim(now: t0).plan
        _ = flow.claimed(jobs(4, trigger: "t", host: "a"), limits: ["t": 4])
        let started = flow.takeStartable(freeSlots: 4, now: t0)
        #expect(started.start.count == 4)
        // The queue emptied while the claimer was not waiting: nobody to wake.
        #expect(!started.wakeClaimer)
        _ = flow.claimed(jobs(4, trigger: "t", host: "a", from: 4), limits: [:])
        let plan5 = flow.planClaim(now: t0).plan
        #expect(plan5 == .wait(until: nil))
        // Slots free one by one; the claimer is woken exactly once, when the queue falls
        // below half its prefetch, not on every transition after that.
        var wakes = 0
        for _ in 0..<4 {
            if flow.finished(hostKeys: ["a"], now: .now) { wakes += 1 }
            if flow.takeStartable(freeSlots: 1, now: t0).wakeClaimer { wakes += 1 }
        }
        #expect(wakes == 1)
    }

    @Test func aSaturatedHostIsLeftOutOfTheClaimSoOthersAreStillClaimed() {
        var flow = FlowControl<Job>(
            limits: limits(pool: 100, perHost: 4, batch: 100), routes: [route("slow", "a"), route("fast", "b")], now: t0)
        var plan = claimLimits(flow.planClaim(now: t0).plan) ?? [:]
        #expect(plan.keys.sorted() == ["fast", "slow"])
        // The database has only slow events: claims fill the slow host's queue until it
        // is no longer short of work.
        var claimedSlow = 0
        while let count = plan["slow"], count > 0, claimedSlow < 1000 {
            _ = flow.claimed(jobs(count, trigger: "slow", host: "a", from: claimedSlow), limits: plan)
            claimedSlow += count
            _ = flow.takeStartable(freeSlots: 100, now: t0)
            plan = claimLimits(flow.planClaim(now: t0).plan) ?? [:]
        }
        #expect(flow.inFlight(host: "a") == 4)
        #expect(flow.queued(host: "a") >= 50)
        flow.notified()  // fast events arrive
        let second = claimLimits(flow.planClaim(now: t0).plan)
        #expect(second?["slow"] == nil)
        #expect((second?["fast"] ?? 0) > 0)
        _ = flow.claimed(jobs(second?["fast"] ?? 0, trigger: "fast", host: "b", from: 1000), limits: second ?? [:])
        let turn = flow.takeStartable(freeSlots: 96, now: t0)
        #expect(!turn.start.isEmpty)
        #expect(turn.start.allSatisfy { $0.hostKey == "b" })
        #expect(flow.inFlight(host: "a") == 4)
    }

    @Test func jobsStartRoundRobinAcrossHostsWithinPerHostLimits() {
        var flow = FlowControl<Job>(
            limits: limits(pool: 6, perHost: 2, batch: 20), routes: [route("x", "a"), route("y", "b"), route("z", "c")],
            now: t0)
        _ = flow.claimed(
            jobs(5, trigger: "x", host: "a") + jobs(5, trigger: "y", host: "b", from: 10)
                + jobs(5, trigger: "z", host: "c", from: 20), limits: [:])
        let turn = flow.takeStartable(freeSlots: 10, now: t0)
        #expect(turn.start.count == 6)
        #expect(Dictionary(grouping: turn.start, by: \.hostKey).mapValues(\.count) == ["a": 2, "b": 2, "c": 2])
        let turn6 = flow.takeStartable(freeSlots: 10, now: t0)
        #expect(turn6.start.isEmpty)
        // Jobs keep capture order within a host.
        _ = flow.finished(hostKeys: ["b"], now: .now)
        let turn7 = flow.takeStartable(freeSlots: 10, now: t0)
        #expect(turn7.start.map(\.id) == [12])
    }

    @Test func severalDeliveryThreadsShareThePoolAndPerHostLimits() {
        var flow = FlowControl<Job>(
            limits: limits(pool: 10, perHost: 3, batch: 20), routes: [route("x", "a"), route("y", "b")], now: t0)
        _ = flow.claimed(jobs(10, trigger: "x", host: "a"), limits: [:])
        let one = flow.takeStartable(freeSlots: 5, now: t0)
        let two = flow.takeStartable(freeSlots: 5, now: t0)
        #expect(one.start.count == 3)
        #expect(two.start.isEmpty)
        #expect(!flow.hasStartable(freeSlots: 5))
        _ = flow.claimed(jobs(10, trigger: "y", host: "b", from: 100), limits: [:])
        #expect(flow.hasStartable(freeSlots: 2))
        let turn8 = flow.takeStartable(freeSlots: 2, now: t0)
        #expect(turn8.start.map(\.hostKey) == ["b", "b"])
        let turn9 = flow.takeStartable(freeSlots: 5, now: t0)
        #expect(turn9.start.count == 1)
        #expect(flow.inFlightTotal == 6)
        // A thread with no free slot of its own starts nothing, whatever is queued.
        #expect(!flow.hasStartable(freeSlots: 0))
    }

    @Test func aJobWhoseStartDeadlinePassedIsDroppedNeverStarted() {
        var flow = FlowControl<Job>(limits: limits(pool: 1, perHost: 1, batch: 10), routes: [route("t", "a")], now: t0)
        let early = jobs(2, trigger: "t", host: "a", deadline: .seconds(1))
        let late = jobs(1, trigger: "t", host: "a", from: 2, deadline: .seconds(60))
        _ = flow.claimed(early + late, limits: [:])
        let turn10 = flow.takeStartable(freeSlots: 1, now: t0)
        #expect(turn10.start.map(\.id) == [0])
        // The host stays busy past job 1's deadline; the thread sleeps only until then.
        #expect(flow.pollTimeout(freeSlots: 0, now: t0) == .seconds(1))
        let later = t0 + .seconds(2)
        #expect(flow.pollTimeout(freeSlots: 0, now: later) == .milliseconds(1))
        let turn = flow.takeStartable(freeSlots: 0, now: later)
        #expect(turn.dropped.map(\.id) == [1])
        #expect(turn.start.isEmpty)
        _ = flow.finished(hostKeys: ["a"], now: .now)
        let turn11 = flow.takeStartable(freeSlots: 1, now: later)
        #expect(turn11.start.map(\.id) == [2])
        #expect(flow.queuedTotal == 0)
    }

    @Test func aJobPastItsDeadlineIsNotStartedEvenWithFreeSlots() {
        var flow = FlowControl<Job>(limits: limits(), routes: [route("t", "a")], now: t0)
        _ = flow.claimed(jobs(3, trigger: "t", host: "a", deadline: .milliseconds(500)), limits: [:])
        let turn = flow.takeStartable(freeSlots: 100, now: t0 + .seconds(1))
        #expect(turn.start.isEmpty)
        #expect(turn.dropped.count == 3)
        #expect(flow.inFlightTotal == 0 && flow.queuedTotal == 0)
    }

    @Test func prefetchIsBoundedSoClaimedJobsCanStartWithinTheLease() {
        let short = limits(pool: 100, perHost: 4, batch: 100, lease: 3)
        #expect(FlowControl<Job>.prefetch(perHost: 4, limits: short, timeout: .seconds(1)) == 8)
        #expect(FlowControl<Job>.prefetch(perHost: 4, limits: short, timeout: .seconds(2)) == 4)
        let long = limits(pool: 100, perHost: 100, batch: 100, lease: 300)
        #expect(FlowControl<Job>.prefetch(perHost: 100, limits: long, timeout: .seconds(60)) == 200)
        // The claim for such a host never exceeds its slots plus that prefetch.
        var flow = FlowControl<Job>(limits: short, routes: [route("t", "a", timeout: 1)], now: t0)
        let plan12 = flow.planClaim(now: t0).plan
        #expect(claimLimits(plan12) == ["t": 12])
    }

    @Test func recorderBacklogStopsClaimsAndItsDrainWakesTheClaimer() {
        var flow = FlowControl<Job>(limits: limits(pool: 10, batch: 10, backlog: 5), routes: [route("t", "a")], now: t0)
        _ = flow.claimed(jobs(10, trigger: "t", host: "a"), limits: ["t": 10])
        let started = flow.takeStartable(freeSlots: 10, now: t0)
        let wakes13 = flow.finished(hostKeys: started.start.map(\.hostKey), now: .now)
        #expect(!wakes13)
        #expect(flow.recorderBacklog == 10)
        let plan14 = flow.planClaim(now: t0).plan
        #expect(plan14 == .wait(until: nil))
        let wakes15 = flow.recorded(4, now: .now)
        #expect(!wakes15)  // 6 still waiting: over the limit
        let wakes16 = flow.recorded(6, now: .now)
        #expect(wakes16)
        #expect(flow.recorderBacklog == 0)
        let plan17 = flow.planClaim(now: t0).plan
        #expect(claimLimits(plan17) == ["t": 10])
    }

    @Test func aDrainedTriggerIsLookedForAgainAtTheNextPollWhateverElseIsClaimed() {
        var flow = FlowControl<Job>(
            limits: limits(pool: 1000, perHost: 1000, batch: 10, poll: .seconds(1)),
            routes: [route("busy", "a"), route("quiet", "b")], now: t0)
        let first = claimLimits(flow.planClaim(now: t0).plan) ?? [:]
        _ = flow.claimed(jobs(first["busy"] ?? 0, trigger: "busy", host: "a"), limits: first)
        // quiet returned nothing: it is left out of the claims that follow...
        for step in 1...5 {
            let now = t0 + .milliseconds(100 * step)
            let plan = claimLimits(flow.planClaim(now: now).plan) ?? [:]
            #expect(plan["quiet"] == nil)
            _ = flow.claimed(jobs(plan["busy"] ?? 0, trigger: "busy", host: "a", from: step * 100), limits: plan)
            _ = flow.takeStartable(freeSlots: 1000, now: now)
        }
        // ...until the poll interval passes, though busy kept claiming all along.
        let plan18 = flow.planClaim(now: t0 + .milliseconds(1100)).plan
        #expect(claimLimits(plan18)?["quiet"] != nil)
    }

    @Test func withNothingKnownDueTheClaimerSleepsUntilTheNextPollOrANotify() {
        var flow = FlowControl<Job>(limits: limits(poll: .seconds(2)), routes: [route("t", "a")], now: t0)
        _ = flow.planClaim(now: t0).plan
        _ = flow.claimed([], limits: ["t": 100])
        let plan19 = flow.planClaim(now: t0 + .milliseconds(10)).plan
        #expect(plan19 == .wait(until: t0 + .seconds(2)))
        flow.notified()
        let plan20 = flow.planClaim(now: t0 + .milliseconds(20)).plan
        #expect(claimLimits(plan20) == ["t": 100])
    }

    @Test func roomIsSharedFairlyBetweenTriggers() {
        #expect(FlowControl<Job>.share(100, among: [("a", 10), ("b", 200), ("c", 200)]) == ["a": 10, "b": 45, "c": 45])
        #expect(FlowControl<Job>.share(5, among: [("a", 10), ("b", 10)]) == ["a": 3, "b": 2])
        #expect(FlowControl<Job>.share(0, among: [("a", 10)]) == [:])
        #expect(FlowControl<Job>.share(10, among: [("a", 0)]) == [:])
        // Two triggers on one host split the host's room; the total never exceeds a batch.
        var flow = FlowControl<Job>(
            limits: limits(pool: 10, perHost: 4, batch: 50, lease: 300),
            routes: [route("x", "a"), route("y", "a"), route("z", "b")], now: t0)
        let plan = claimLimits(flow.planClaim(now: t0).plan) ?? [:]
        #expect((plan["x"] ?? 0) + (plan["y"] ?? 0) <= 4 + 40)
        #expect(plan.values.reduce(0, +) <= 50)
    }

    @Test func stoppingDropsTheQueueAndEndsClaimsAndStarts() {
        var flow = FlowControl<Job>(limits: limits(pool: 2, batch: 10), routes: [route("t", "a")], now: t0)
        _ = flow.claimed(jobs(5, trigger: "t", host: "a"), limits: [:])
        _ = flow.takeStartable(freeSlots: 2, now: t0)
        let dropped21 = flow.beginStopping()
        #expect(dropped21.map(\.id) == [2, 3, 4])
        let plan22 = flow.planClaim(now: t0).plan
        #expect(plan22 == .stop)
        let turn23 = flow.takeStartable(freeSlots: 2, now: t0)
        #expect(turn23.start.isEmpty)
        let wakes24 = flow.finished(hostKeys: ["a"], now: .now)
        #expect(!wakes24)
        flow.aborted([.init(hostKey: "a")])
        #expect(flow.inFlightTotal == 0)
    }
}

@Suite("Error log throttle")
struct ErrorLogThrottleTests {
    @Test func repeatedErrorsAreLoggedOncePerIntervalWithTheirCount() {
        let t0 = ContinuousClock.now
        var throttle = ErrorLogThrottle(interval: .seconds(30))
        let admitted25 = throttle.admit("permission denied", now: t0)
        #expect(admitted25 == 0)
        for step in 1...99 {
            let admitted26 = throttle.admit("permission denied", now: t0 + .milliseconds(step * 40))
            #expect(admitted26 == nil)
        }
        let admitted27 = throttle.admit("connection refused", now: t0 + .seconds(5))
        #expect(admitted27 == 0)
        let admitted28 = throttle.admit("permission denied", now: t0 + .seconds(31))
        #expect(admitted28 == 99)
        throttle.reset()
        let admitted29 = throttle.admit("permission denied", now: t0 + .seconds(32))
        #expect(admitted29 == 0)
    }
}
