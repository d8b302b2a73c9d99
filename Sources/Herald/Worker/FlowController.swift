import Synchronization

/// ``FlowControl`` under one lock, plus the two ways of waking the threads it steers: the
/// claimer sleeps in `poll` on ``claimerWakeDescriptor`` (and its database socket), the
/// delivery threads in `curl_multi_poll` (woken through the closure the deliverer installs).
/// The critical sections are the state machine's own steps; no I/O happens under the lock.
public final class FlowController: Sendable {
    private let state: Mutex<FlowControl<DeliveryJob>>
    private let claimerWake = WakePipe()
    private let deliveryWake = Mutex<(@Sendable () -> Void)?>(nil)

    public init(limits: FlowControl<DeliveryJob>.Limits, routes: [FlowRoute]) {
        state = Mutex(FlowControl(limits: limits, routes: routes, now: .now))
    }

    public var limits: FlowControl<DeliveryJob>.Limits { state.withLock { $0.limits } }

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
        state.withLock { $0.planClaim(now: .now) }
    }

    func claimed(_ jobs: [DeliveryJob], limits: [String: Int]) {
        if state.withLock({ $0.claimed(jobs, limits: limits) }) { wakeDelivery() }
    }

    func notified() {
        state.withLock { $0.notified() }
    }

    func takeStartable(freeSlots: Int) -> FlowControl<DeliveryJob>.DeliveryTurn {
        let turn = state.withLock { $0.takeStartable(freeSlots: freeSlots, now: .now) }
        if turn.wakeClaimer { wakeClaimer() }
        return turn
    }

    /// Records finished transfers and returns how long the thread may sleep next.
    func finished(hostKeys: [String], freeSlots: Int) -> Duration {
        let (wake, timeout) = state.withLock { flow in
            let wake = hostKeys.isEmpty ? false : flow.finished(hostKeys: hostKeys)
            return (wake, flow.pollTimeout(freeSlots: freeSlots, now: .now))
        }
        if wake { wakeClaimer() }
        return timeout
    }

    func aborted(hostKeys: [String]) {
        state.withLock { $0.aborted(hostKeys: hostKeys) }
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

    /// Jobs claimed and waiting for a slot.
    public var queued: Int { state.withLock { $0.queuedTotal } }

    public var recorderBacklog: Int { state.withLock { $0.recorderBacklog } }
}
