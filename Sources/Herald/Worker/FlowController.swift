import Synchronization

/// ``FlowControl`` under one lock, plus the two ways of waking the threads it steers: the
/// claimer sleeps in `poll` on ``claimerWakeDescriptor`` (and its database socket), the
/// delivery threads in `curl_multi_poll` (woken through the closure the deliverer installs).
/// The critical sections are the state machine's own steps; no I/O happens under the lock.
public final class FlowController: Sendable {
    public typealias Notice = FlowControl<DeliveryJob>.Notice

    /// Writes flow control asks for, done by the claimer on its connection.
    struct DatabaseWork {
        /// Leases to give back: queued jobs dropped unsent (breaker opened, trigger disabled).
        var releases: [ClaimedEvent] = []
        /// Trigger state to persist so that every worker (and `herald triggers`) sees it.
        var disables: [(trigger: String, reason: String)] = []
        var circuits: [(trigger: String, state: String)] = []

        var isEmpty: Bool { releases.isEmpty && disables.isEmpty && circuits.isEmpty }
    }

    private let state: Mutex<FlowControl<DeliveryJob>>
    private let claimerWake = WakePipe()
    private let deliveryWake = Mutex<(@Sendable () -> Void)?>(nil)
    private let databaseWork = Mutex(DatabaseWork())
    private let noticeSink: @Sendable ([Notice]) -> Void

    /// `noticeSink` hears every notice (breaker transitions, disables, deferrals) outside the
    /// lock, for logs, metrics and alerts.
    public init(
        limits: FlowControl<DeliveryJob>.Limits, routes: [FlowRoute],
        noticeSink: @escaping @Sendable ([Notice]) -> Void = { _ in }
    ) {
        state = Mutex(FlowControl(limits: limits, routes: routes, now: .now))
        self.noticeSink = noticeSink
    }

    /// Queues the database side of notices, wakes the claimer to do it, and passes them on.
    private func handle(_ notices: [Notice]) {
        guard !notices.isEmpty else { return }
        var needsDatabase = false
        databaseWork.withLock { work in
            for notice in notices {
                switch notice {
                case .release(let jobs, _):
                    work.releases += jobs.map(\.event)
                    needsDatabase = true
                case .disabled(let trigger, let reason):
                    work.disables.append((trigger, reason))
                    needsDatabase = true
                case .circuit(let trigger, let transition):
                    let name: String
                    switch transition {
                    case .opened: name = "open"
                    case .halfOpened: name = "half_open"
                    case .closed: name = "closed"
                    }
                    work.circuits.append((trigger, name))
                    needsDatabase = true
                case .rateLimited:
                    break
                }
            }
        }
        if needsDatabase { wakeClaimer() }
        noticeSink(notices)
    }

    /// Takes the writes waiting for the claimer.
    func takeDatabaseWork() -> DatabaseWork {
        databaseWork.withLock { work in
            defer { work = DatabaseWork() }
            return work
        }
    }

    /// Puts back writes that failed (the connection went away), to be tried again.
    func restoreDatabaseWork(_ failed: DatabaseWork) {
        databaseWork.withLock { work in
            work.releases = failed.releases + work.releases
            work.disables = failed.disables + work.disables
            work.circuits = failed.circuits + work.circuits
        }
    }

    /// The claimer polls this descriptor for readability.
    var claimerWakeDescriptor: Int32 { claimerWake.descriptor }

    func drainClaimerWakeups() { claimerWake.drain() }

    func wakeClaimer() { claimerWake.signal() }

    /// Installed once by the deliverer.
    func setDeliveryWake(_ wake: @escaping @Sendable () -> Void) {
        deliveryWake.withLock { $0 = wake }
    }

    private func wakeDelivery() {
        deliveryWake.withLock { $0 }?()
    }

    func planClaim() -> FlowControl<DeliveryJob>.ClaimPlan {
        let (plan, notices) = state.withLock { flow in (flow.planClaim(now: .now), flow.takeNotices()) }
        handle(notices)
        return plan
    }

    func claimed(_ jobs: [DeliveryJob], limits: [String: Int]) {
        if state.withLock({ $0.claimed(jobs, limits: limits) }) { wakeDelivery() }
    }

    /// Shared rate limits that need tokens from PostgreSQL, and how many to ask for.
    func tokenRequests() -> [String: Int] {
        state.withLock { $0.tokenRequests(now: .now) }
    }

    func granted(_ count: Int, to trigger: String) {
        state.withLock { $0.granted(count, to: trigger, now: .now) }
    }

    /// The disabled triggers as stored in the database; returns the triggers whose state
    /// changed, so the caller can say so.
    func setDisabled(_ disabled: Set<String>) -> (enabled: [String], disabled: [String]) {
        let (before, after, notices) = state.withLock { flow in
            let before = Set(flow.triggers.filter { flow.isDisabled($0) })
            flow.setDisabled(disabled)
            let after = Set(flow.triggers.filter { flow.isDisabled($0) })
            return (before, after, flow.takeNotices())
        }
        handle(notices)
        return (before.subtracting(after).sorted(), after.subtracting(before).sorted())
    }

    func notified() {
        state.withLock { $0.notified() }
    }

    func takeStartable(freeSlots: Int) -> FlowControl<DeliveryJob>.DeliveryTurn {
        let (turn, notices) = state.withLock { flow in
            (flow.takeStartable(freeSlots: freeSlots, now: .now), flow.takeNotices())
        }
        handle(notices)
        if turn.wakeClaimer { wakeClaimer() }
        return turn
    }

    /// Records finished transfers — slots, the breaker, receiver stop signals — and returns
    /// how long the thread may sleep next.
    func finished(_ attempts: [(hostKey: String, outcome: DeliveryOutcome)], freeSlots: Int) -> Duration {
        let now = ContinuousClock.now
        let (wake, timeout, notices) = state.withLock { flow in
            var wake = false
            if !attempts.isEmpty {
                for (_, outcome) in attempts {
                    let trigger = outcome.event.triggerName
                    flow.recordOutcome(
                        trigger: trigger, succeeded: outcome.decision == .delivered,
                        breakerFailure: outcome.breakerFailure, now: now)
                    if let reason = outcome.disableTrigger { flow.disable(trigger, reason: reason) }
                }
                wake = flow.finished(hostKeys: attempts.map(\.hostKey), now: now)
            }
            return (wake, flow.pollTimeout(freeSlots: freeSlots, now: now), flow.takeNotices())
        }
        handle(notices)
        if wake { wakeClaimer() }
        return timeout
    }

    func aborted(hostKeys: [String]) {
        state.withLock { $0.aborted(hostKeys: hostKeys) }
    }

    /// Keyed heads of these triggers finished: what waited behind them is due.
    func keysReleased(triggers: Set<String>) {
        if state.withLock({ $0.keysReleased(triggers: triggers) }) { wakeClaimer() }
    }

    func recorded(_ count: Int) {
        if state.withLock({ $0.recorded(count) }) { wakeClaimer() }
    }

    /// Stops claiming and starting; queued jobs are dropped (their leases are released when
    /// the worker stops). Returns how many were dropped.
    @discardableResult
    func beginStopping() -> Int {
        let dropped = state.withLock { $0.beginStopping() }
        wakeClaimer()
        wakeDelivery()
        return dropped.count
    }

    public var isStopping: Bool { state.withLock { $0.isStopping } }

    /// Transfers running now.
    public var inFlight: Int { state.withLock { $0.inFlightTotal } }
}
