import Algorithms
import Synchronization

/// ``FlowControl`` under one lock, plus the two ways of waking the threads it steers: each
/// source's claimer sleeps in `poll` on its ``claimerWakeDescriptor(source:)`` (and its
/// database socket), the delivery threads in `curl_multi_poll` (woken through the closure
/// the deliverer installs).
/// The critical sections are the state machine's own steps; no I/O happens under the lock.
public final class FlowController: Sendable {
    public typealias Notice = FlowControl<DeliveryJob>.Notice

    /// Writes flow control asks for, done by the source's claimer on its connection.
    struct DatabaseWork {
        /// Leases to give back: queued jobs dropped unsent (breaker opened, trigger disabled).
        var releases: [ClaimedEvent] = []
        /// Trigger state to persist so that every worker (and `herald triggers`) sees it.
        var disables: [(trigger: String, reason: String)] = []
        var circuits: [(trigger: String, state: String)] = []

        var isEmpty: Bool { releases.isEmpty && disables.isEmpty && circuits.isEmpty }
    }

    private let state: Mutex<FlowControl<DeliveryJob>>
    /// Each source's claimer's wake pipe. Behind a lock only because a source may join while
    /// running (a Citus worker node); the lookups are a dictionary read.
    private let claimerWakes: Mutex<[String: WakePipe]>
    /// Held as an object, not as a bare closure: copying an optional closure out of the lock
    /// (`withLock { $0 }?()`) allocated a 32-byte context on every wake that was never freed
    /// in release builds (heaptrack: 36,503 of them in six minutes, the worker's slow RSS
    /// growth). A class reference is retained and released like any other.
    private let deliveryWake = Mutex<DeliveryWake?>(nil)
    private let databaseWork = Mutex([String: DatabaseWork]())
    private let noticeSink: @Sendable ([Notice]) -> Void

    /// `noticeSink` hears every notice (breaker transitions, disables, deferrals) outside the
    /// lock, for logs, metrics and alerts.
    public init(
        limits: FlowControl<DeliveryJob>.Limits, routes: [FlowRoute],
        noticeSink: @escaping @Sendable ([Notice]) -> Void = { _ in }
    ) {
        let flow = FlowControl<DeliveryJob>(limits: limits, routes: routes, now: .now)
        claimerWakes = Mutex(Dictionary(uniqueKeysWithValues: flow.sourceNames.map { ($0, WakePipe()) }))
        state = Mutex(flow)
        self.noticeSink = noticeSink
    }

    /// A source found while running (``FlowControl/addSource(routes:now:)``), with a wake
    /// pipe for its claimer.
    public func addSource(routes: [FlowRoute]) {
        claimerWakes.withLock { wakes in
            for source in Set(routes.map(\.source)) where wakes[source] == nil { wakes[source] = WakePipe() }
        }
        state.withLock { $0.addSource(routes: routes, now: .now) }
    }

    /// Queues the database side of notices for the claimer of each one's source, wakes it to
    /// do it, and passes them on.
    private func handle(_ notices: [Notice]) {
        guard !notices.isEmpty else { return }
        var sources: Set<String> = []
        databaseWork.withLock { work in
            for notice in notices {
                switch notice {
                case .release(let jobs, _):
                    for job in jobs { work[job.sourceName, default: DatabaseWork()].releases += job.events }
                    sources.formUnion(jobs.map(\.sourceName))
                case .disabled(let trigger, let reason):
                    work[trigger.source, default: DatabaseWork()].disables.append((trigger.name, reason))
                    sources.insert(trigger.source)
                case .circuit(let trigger, let transition):
                    let name: String
                    switch transition {
                    case .opened: name = "open"
                    case .halfOpened: name = "half_open"
                    case .closed: name = "closed"
                    }
                    work[trigger.source, default: DatabaseWork()].circuits.append((trigger.name, name))
                    sources.insert(trigger.source)
                case .rateLimited:
                    break
                }
            }
        }
        wakeClaimers(sources)
        noticeSink(notices)
    }

    /// Takes the writes waiting for the source's claimer.
    func takeDatabaseWork(source: String) -> DatabaseWork {
        databaseWork.withLock { $0.removeValue(forKey: source) } ?? DatabaseWork()
    }

    /// Puts back writes that failed (the connection went away), to be tried again.
    func restoreDatabaseWork(_ failed: DatabaseWork, source: String) {
        databaseWork.withLock { all in
            var work = all[source] ?? DatabaseWork()
            work.releases = failed.releases + work.releases
            work.disables = failed.disables + work.disables
            work.circuits = failed.circuits + work.circuits
            all[source] = work
        }
    }

    /// The source's claimer polls this descriptor for readability.
    func claimerWakeDescriptor(source: String) -> Int32 { claimerWakes.withLock { $0[source] }?.descriptor ?? -1 }

    func drainClaimerWakeups(source: String) { claimerWakes.withLock { $0[source] }?.drain() }

    func wakeClaimer(source: String) { claimerWakes.withLock { $0[source] }?.signal() }

    private func wakeClaimers(_ sources: Set<String>) {
        for source in sources { wakeClaimer(source: source) }
    }

    /// Installed once by the deliverer.
    func setDeliveryWake(_ wake: @escaping @Sendable () -> Void) {
        let waker = DeliveryWake(wake)
        deliveryWake.withLock { $0 = waker }
    }

    func wakeDelivery() {
        deliveryWake.withLock { $0 }?.wake()
    }

    func planClaim(source: String) -> FlowControl<DeliveryJob>.ClaimPlan {
        let (plan, notices) = state.withLock { flow in
            let step = flow.planClaim(source: source, now: .now)
            return (step.plan, step.notices)
        }
        handle(notices)
        return plan
    }

    /// A source's claim came back: wakes the delivery threads, and the claimers of other
    /// sources that waited for room this source no longer wants.
    func claimed(_ jobs: [DeliveryJob], events: [String: Int]? = nil, limits: [String: Int], source: String) {
        let (wakeDelivery, claimers) = state.withLock { flow in
            (flow.claimed(jobs, events: events, limits: limits, source: source), flow.takeClaimerWakes(now: .now))
        }
        if wakeDelivery { self.wakeDelivery() }
        wakeClaimers(claimers)
    }

    /// Shared rate limits of the source that need tokens from its database, and how many to ask for.
    func tokenRequests(source: String) -> [String: Int] {
        state.withLock { $0.tokenRequests(source: source, now: .now) }
    }

    func granted(_ count: Int, to trigger: TriggerRef) {
        state.withLock { $0.granted(count, to: trigger, now: .now) }
    }

    /// The disabled triggers of a source as stored in its database; returns the triggers
    /// whose state changed, so the caller can say so.
    func setDisabled(_ disabled: Set<String>, source: String) -> (enabled: [String], disabled: [String]) {
        let change = state.withLock { $0.setDisabled(disabled, source: source) }
        handle(change.notices)
        return (change.enabled.sorted(), change.disabled.sorted())
    }

    /// See ``FlowControl/claimFailed(source:)``.
    func claimFailed(source: String) {
        state.withLock { $0.claimFailed(source: source) }
    }

    func notified(source: String, only triggers: Set<String>? = nil) {
        state.withLock { $0.notified(source: source, only: triggers) }
    }

    func takeStartable(freeSlots: Int) -> FlowControl<DeliveryJob>.DeliveryTurn {
        let turn = state.withLock { $0.takeStartable(freeSlots: freeSlots, now: .now) }
        wakeClaimers(turn.wakeClaimers)
        return turn
    }

    /// Records finished transfers — slots, the breaker, receiver stop signals — and returns
    /// how long the thread may sleep next.
    /// A batch's request is one attempt for the breaker and `disable_after` (its events share
    /// the response), and as many outcomes for the recorder as it carried events.
    func finished(_ requests: [(hostKey: String, outcomes: ArraySlice<DeliveryOutcome>)], freeSlots: Int) -> Duration {
        let now = ContinuousClock.now
        let attempts = requests.compactMap { request in
            request.outcomes.first.map { (hostKey: request.hostKey, outcome: $0, count: request.outcomes.count) }
        }
        let (wake, timeout, notices) = state.withLock { flow in
            var wake: Set<String> = []
            var notices: [Notice] = []
            if !attempts.isEmpty {
                // One call per run of one trigger's attempts. A run ends at an attempt whose
                // receiver said to disable the trigger, so the disable follows the attempts
                // before it, as one call per attempt would have it.
                let runs = attempts.chunked { previous, next in
                    previous.outcome.disableTrigger == nil && next.outcome.event.triggerName == previous.outcome.event.triggerName
                        && next.outcome.event.source == previous.outcome.event.source
                }
                for run in runs {
                    let first = run[run.startIndex].outcome, last = run[run.index(before: run.endIndex)].outcome
                    let trigger = TriggerRef(source: first.event.source, name: first.event.triggerName)
                    notices += flow.recordOutcomes(
                        trigger: trigger, attempts: run.map { ($0.outcome.decision == .delivered, $0.outcome.breakerFailure) },
                        now: now)
                    if let reason = last.disableTrigger { notices += flow.disable(trigger, reason: reason) }
                }
                wake = flow.finished(
                    attempts.map { .init(hostKey: $0.hostKey, source: $0.outcome.event.source, outcomes: $0.count) }, now: now)
            }
            return (wake, flow.pollTimeout(freeSlots: freeSlots, now: now), notices)
        }
        handle(notices)
        wakeClaimers(wake)
        return timeout
    }

    func aborted(_ jobs: [DeliveryJob]) {
        state.withLock { $0.aborted(jobs.map { .init(hostKey: $0.hostKey, source: $0.sourceName) }) }
    }

    /// Keyed heads of these triggers of the source finished: what waited behind them is due.
    func keysReleased(triggers: Set<String>, source: String) {
        if state.withLock({ $0.keysReleased(triggers: triggers, source: source, now: .now) }) { wakeClaimer(source: source) }
    }

    func recorded(_ count: Int, source: String) {
        if state.withLock({ $0.recorded(count, source: source, now: .now) }) { wakeClaimer(source: source) }
    }

    /// Stops claiming and starting; queued jobs are dropped (their leases are released when
    /// the worker stops). Returns how many were dropped.
    @discardableResult
    func beginStopping() -> Int {
        let dropped = state.withLock { $0.beginStopping() }
        wakeClaimers(Set(claimerWakes.withLock { $0.keys }))
        wakeDelivery()
        return dropped.count
    }

    public var isStopping: Bool { state.withLock { $0.isStopping } }

    /// Transfers running now.
    public var inFlight: Int { state.withLock { $0.inFlightTotal } }
}

/// The deliverer's wake-up, installed once (see `FlowController.deliveryWake`).
final class DeliveryWake: Sendable {
    let wake: @Sendable () -> Void

    init(_ wake: @escaping @Sendable () -> Void) { self.wake = wake }
}
