import Testing

@testable import Herald

/// Flow control with several sources (databases) sharing one pool: the fair share, per-source
/// recorder backlogs and trigger state, and whose claimer is woken.
@Suite("Source fairness")
struct SourceFairnessTests {
    typealias Job = FlowControlTests.Job

    let t0 = ContinuousClock.now

    /// Pool 10, batch 5: capacity 20 (pool plus two batches); each host's prefetch is 10,
    /// hungry below 5 queued.
    func makeFlow(backlog: Int = 1000, sameTriggerName: Bool = false) -> FlowControl<Job> {
        FlowControl<Job>(
            limits: .init(
                poolSize: 10, perHostLimit: 10, fetchBatchSize: 5, leaseSeconds: 300, recorderBacklogLimit: backlog,
                pollInterval: .seconds(1)),
            routes: [
                FlowRoute(trigger: sameTriggerName ? "t" : "a", source: "a", hostKey: "ha", timeout: .seconds(10)),
                FlowRoute(trigger: sameTriggerName ? "t" : "b", source: "b", hostKey: "hb", timeout: .seconds(10)),
            ],
            now: t0)
    }

    func jobs(_ count: Int, source: String, trigger: String? = nil, from first: Int = 0) -> [Job] {
        (first..<first + count).map {
            Job(
                id: $0, hostKey: "h\(source)", triggerName: trigger ?? source, startDeadline: t0 + .seconds(200),
                sourceName: source)
        }
    }

    func slots(_ count: Int, source: String) -> [FlowControl<Job>.Slot] {
        Array(repeating: .init(hostKey: "h\(source)", source: source), count: count)
    }

    /// Source b finds nothing; source a claims until its host is full: 10 in flight, 5 queued.
    func floodA(_ flow: inout FlowControl<Job>) {
        #expect(flow.planClaim(source: "b", now: t0).plan == .claim(["b": 5]))
        _ = flow.claimed([], limits: ["b": 5], source: "b")
        for round in 0..<3 {
            #expect(flow.planClaim(source: "a", now: t0).plan == .claim(["a": 5]), "round \(round)")
            _ = flow.claimed(jobs(5, source: "a", from: round * 5), limits: ["a": 5], source: "a")
            _ = flow.takeStartable(freeSlots: 10, now: t0)
        }
        #expect(flow.held(source: "a") == 15 && flow.inFlightTotal == 10 && flow.queuedTotal == 5)
    }

    @Test func aFloodedSourceTakesTheRoomAnIdleSourceLeaves() {
        var flow = makeFlow()
        floodA(&flow)
        // Beyond its fair share (20 / 2 sources) because b wants nothing: max(share, unused).
        #expect(flow.held(source: "a") > 10)
        #expect(flow.sourceRoom("a") == 5)
    }

    @Test func aQuietSourceWithEventsGetsTheFreeRoomAndTheFloodedOneWaits() {
        var flow = makeFlow()
        floodA(&flow)
        flow.notified(source: "b")
        // b is below its share of 10: the 5 free slots are reserved for it.
        #expect(flow.sourceRoom("b") == 5)
        #expect(flow.sourceRoom("a") <= 0)
        #expect(flow.planClaim(source: "a", now: t0).plan == .wait(until: nil))
        #expect(flow.planClaim(source: "b", now: t0).plan == .claim(["b": 5]))
    }

    @Test func freedRoomGoesToTheQuietSourceBeforeTheFloodedOne() {
        var flow = makeFlow()
        floodA(&flow)
        flow.notified(source: "b")
        #expect(flow.planClaim(source: "a", now: t0).plan == .wait(until: nil))
        // A's transfers finish: the room they free is b's while b still has due events…
        let woken = flow.finished(slots(5, source: "a"), now: .now)
        #expect(!woken.contains("a"))
        let turn = flow.takeStartable(freeSlots: 10, now: t0)
        #expect(turn.start.count == 5 && !turn.wakeClaimers.contains("a"))
        #expect(flow.planClaim(source: "b", now: t0).plan == .claim(["b": 5]))
        // …and once b's claim comes back short (one event), a is woken for what is left.
        _ = flow.claimed(jobs(1, source: "b", from: 100), limits: ["b": 5], source: "b")
        #expect(flow.takeClaimerWakes(now: t0) == ["a"])
        #expect(flow.planClaim(source: "a", now: t0).plan == .claim(["a": 5]))
    }

    @Test func withOneSourceTheRoomIsTheFreeCapacity() {
        var flow = FlowControl<Job>(
            limits: .init(
                poolSize: 10, perHostLimit: 10, fetchBatchSize: 5, leaseSeconds: 300, recorderBacklogLimit: 1000,
                pollInterval: .seconds(1)),
            routes: [FlowRoute(trigger: "a", source: "a", hostKey: "ha", timeout: .seconds(10))], now: t0)
        #expect(flow.sourceRoom("a") == 20)
        _ = flow.claimed(jobs(5, source: "a"), limits: ["a": 5], source: "a")
        #expect(flow.sourceRoom("a") == 15)
    }

    @Test func oneSourcesUnwrittenOutcomesDoNotStopTheOther() {
        var flow = makeFlow(backlog: 3)
        #expect(flow.planClaim(source: "a", now: t0).plan == .claim(["a": 5]))
        _ = flow.claimed(jobs(5, source: "a"), limits: ["a": 5], source: "a")
        _ = flow.takeStartable(freeSlots: 10, now: t0)
        // Source a's database is down: its recorder cannot write these.
        _ = flow.finished(slots(5, source: "a"), now: .now)
        #expect(flow.planClaim(source: "a", now: t0).plan == .wait(until: nil))
        #expect(flow.planClaim(source: "b", now: t0).plan == .claim(["b": 5]))
        // Written at last: a's claimer is woken (and only by its own recorder).
        let wakesB = flow.recorded(5, source: "b", now: t0)
        let wakesA = flow.recorded(5, source: "a", now: t0)
        #expect(!wakesB && wakesA)
    }

    @Test func triggersOfTheSameNameInTwoSourcesAreGatedApart() {
        var flow = makeFlow(sameTriggerName: true)
        flow.disable(TriggerRef(source: "a", name: "t"), reason: "test")
        #expect(flow.isDisabled(TriggerRef(source: "a", name: "t")))
        #expect(!flow.isDisabled(TriggerRef(source: "b", name: "t")))
        #expect(flow.planClaim(source: "a", now: t0).plan == .wait(until: t0 + .seconds(1)))
        #expect(flow.planClaim(source: "b", now: t0).plan == .claim(["t": 5]))
        // The database state of source b enables its t without touching a's.
        flow.setDisabled([], source: "b")
        #expect(flow.isDisabled(TriggerRef(source: "a", name: "t")))
    }

    @Test func releasedKeysWakeOnlyTheirSourcesClaimer() {
        var flow = makeFlow()
        _ = flow.planClaim(source: "a", now: t0).plan
        _ = flow.claimed([], limits: ["a": 5], source: "a")
        _ = flow.planClaim(source: "b", now: t0).plan
        _ = flow.claimed([], limits: ["b": 5], source: "b")
        let wakesB = flow.keysReleased(triggers: ["b"], source: "b", now: t0)
        let wakesA = flow.keysReleased(triggers: ["b"], source: "a", now: t0)
        #expect(wakesB && !wakesA)
        #expect(flow.planClaim(source: "b", now: t0).plan == .claim(["b": 5]))
    }

    @Test func queuedJobsDroppedAtShutdownLeaveNoSourceHoldingRoom() {
        var flow = makeFlow()
        _ = flow.planClaim(source: "a", now: t0).plan
        _ = flow.claimed(jobs(5, source: "a"), limits: ["a": 5], source: "a")
        _ = flow.planClaim(source: "b", now: t0).plan
        _ = flow.claimed(jobs(3, source: "b", from: 10), limits: ["b": 5], source: "b")
        #expect(flow.beginStopping().count == 8)
        #expect(flow.held(source: "a") == 0 && flow.held(source: "b") == 0)
    }
}

/// A source that joins while running (a Citus worker node added to the cluster).
@Suite("Sources joining while running")
struct SourceJoiningTests {
    typealias Job = FlowControlTests.Job
    let t0 = ContinuousClock.now

    @Test func aJoiningSourceClaimsAtOnceAndTakesItsFairShare() {
        let fairness = SourceFairnessTests()
        var flow = FlowControl<Job>(
            limits: .init(
                poolSize: 10, perHostLimit: 10, fetchBatchSize: 5, leaseSeconds: 300, recorderBacklogLimit: 1000,
                pollInterval: .seconds(1)),
            routes: [FlowRoute(trigger: "t", source: "a", hostKey: "ha", timeout: .seconds(10))], now: t0)
        // Before it joins, flow control knows nothing of it.
        #expect(flow.planClaim(source: "b", now: t0).plan == .wait(until: t0 + .seconds(1)))
        // Alone, a takes the capacity: 10 in flight, 5 queued.
        for round in 0..<3 {
            #expect(flow.planClaim(source: "a", now: t0).plan == .claim(["t": 5]), "round \(round)")
            _ = flow.claimed(fairness.jobs(5, source: "a", trigger: "t", from: round * 5), limits: ["t": 5], source: "a")
            _ = flow.takeStartable(freeSlots: 10, now: t0)
        }
        #expect(flow.held(source: "a") == 15)

        // Same trigger name: its own trigger (and gates) in its own source.
        flow.addSource(routes: [FlowRoute(trigger: "t", source: "b", hostKey: "hb", timeout: .seconds(10))], now: t0)
        #expect(flow.sourceNames == ["a", "b"])
        #expect(flow.triggers.contains(TriggerRef(source: "b", name: "t")))
        // It may have due events from the start and claims at once; the free room is its,
        // up to its share (capacity 20 over two sources), and a waits.
        #expect(flow.sourceRoom("b") == 5)
        #expect(flow.planClaim(source: "b", now: t0).plan == .claim(["t": 5]))
        #expect(flow.planClaim(source: "a", now: t0).plan == .wait(until: nil))

        // Adding it again changes nothing.
        flow.addSource(routes: [FlowRoute(trigger: "t", source: "b", hostKey: "hb", timeout: .seconds(10))], now: t0)
        #expect(flow.triggers.filter { $0.source == "b" }.count == 1)
    }
}

/// A look while writers are silent asks the capturing triggers only.
@Suite("Looks at capturing triggers")
struct LookTests {
    typealias Job = FlowControlTests.Job
    let t0 = ContinuousClock.now

    @Test func aLookAsksOnlyTheNamedTriggersAndANotifyAsksThemAll() {
        let fairness = SourceFairnessTests()
        var flow = FlowControl<Job>(
            limits: .init(
                poolSize: 100, perHostLimit: 100, fetchBatchSize: 100, leaseSeconds: 300, recorderBacklogLimit: 1000,
                pollInterval: .seconds(1)),
            routes: [
                FlowRoute(trigger: "orders", source: "a", hostKey: "ha", timeout: .seconds(10)),
                FlowRoute(trigger: "@scheduled", source: "a", hostKey: "hs", timeout: .seconds(10)),
            ], now: t0)
        // The first claim (the poll) shares the batch; both come back short.
        #expect(flow.planClaim(source: "a", now: t0).plan == .claim(["orders": 50, "@scheduled": 50]))
        _ = flow.claimed(fairness.jobs(10, source: "a", trigger: "orders"), limits: ["orders": 50, "@scheduled": 50], source: "a")
        flow.notified(source: "a", only: ["orders"])
        #expect(flow.planClaim(source: "a", now: t0).plan == .claim(["orders": 100]))
        _ = flow.claimed([], limits: ["orders": 100], source: "a")
        flow.notified(source: "a")
        #expect(flow.planClaim(source: "a", now: t0).plan == .claim(["orders": 50, "@scheduled": 50]))
    }
}
