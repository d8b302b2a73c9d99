/// The gates of every routed trigger (rate limit, circuit breaker, disabled): the part of
/// ``FlowControl`` that holds triggers back. Pure and clock-free. Questions (``allowance(for:now:)``,
/// ``nextChange(of:now:)``) change nothing, so a claim can be planned as a dry run; every
/// change returns the actions it calls for, which ``FlowControl`` carries out on its queues
/// and reports.
struct TriggerGates {
    enum Action {
        case circuit(TriggerRef, CircuitBreaker.Transition)
        case disabled(TriggerRef, reason: String)
        /// The trigger's queued jobs must be given back unsent.
        case giveBackQueued(TriggerRef, FlowDeferReason)
    }

    private var gates: [TriggerRef: TriggerGate]

    init(routes: [TriggerRef: FlowRoute], now: ContinuousClock.Instant) {
        gates = routes.mapValues { TriggerGate(protection: $0.protection, now: now) }
    }

    /// Gates for routes added while running; a trigger that has one keeps it.
    mutating func add(_ routes: [TriggerRef: FlowRoute], now: ContinuousClock.Instant) {
        for (ref, route) in routes where gates[ref] == nil {
            gates[ref] = TriggerGate(protection: route.protection, now: now)
        }
    }

    // MARK: Questions

    /// What a trigger's gate allows now: nil for no limit, else that many events.
    func allowance(for trigger: TriggerRef, now: ContinuousClock.Instant) -> Int? {
        guard let gate = gates[trigger] else { return nil }
        if gate.disabled { return 0 }
        var allowance = gate.breaker?.claimAllowance()
        if let bucket = gate.bucket {
            let tokens = bucket.tokens(at: now)
            allowance = min(allowance ?? tokens, tokens)
        }
        return allowance
    }

    func hasRateLimit(_ trigger: TriggerRef) -> Bool { gates[trigger]?.bucket != nil }

    /// The earliest instant one of these triggers' gates, now holding it back, may let it through.
    func nextChange(of triggers: some Sequence<TriggerRef>, now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        var earliest: ContinuousClock.Instant?
        for trigger in triggers {
            guard let gate = gates[trigger], !gate.disabled else { continue }
            var candidates: [ContinuousClock.Instant] = []
            if case .open(let until) = gate.breaker?.state { candidates.append(until) }
            if let bucket = gate.bucket, bucket.tokens(at: now) < 1, let next = bucket.nextToken(after: now) {
                candidates.append(next)
            }
            if gate.isShared, let next = gate.nextGrantRequest { candidates.append(next) }
            for candidate in candidates where earliest.map({ candidate < $0 }) ?? true { earliest = candidate }
        }
        return earliest
    }

    func isDisabled(_ trigger: TriggerRef) -> Bool { gates[trigger]?.disabled ?? false }

    func circuitState(_ trigger: TriggerRef) -> CircuitBreaker.State? { gates[trigger]?.breaker?.state }

    /// Shared rate limits among `triggers` whose local tokens ran out: how many tokens to ask
    /// the database for (a block of about a quarter second's worth), by trigger name.
    func tokenRequests(of triggers: some Sequence<TriggerRef>, now: ContinuousClock.Instant) -> [String: Int] {
        var requests: [String: Int] = [:]
        for trigger in triggers {
            guard let gate = gates[trigger], gate.isShared, !gate.disabled, let bucket = gate.bucket,
                bucket.tokens < 1, gate.breaker?.claimAllowance() != 0
            else { continue }
            if let next = gate.nextGrantRequest, now < next { continue }
            requests[trigger.name] = max(1, min(Int(bucket.burst), Int((bucket.rate / 4).rounded(.up))))
        }
        return requests
    }

    // MARK: Changes

    /// Brings the triggers' gates up to `now` before a claim: open breakers whose time is up
    /// become half-open, buckets refill.
    mutating func advance(_ triggers: [TriggerRef], now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for trigger in triggers {
            if let transition = gates[trigger]?.breaker?.advance(now: now) { actions.append(.circuit(trigger, transition)) }
            gates[trigger]?.bucket?.refill(now: now)
        }
        return actions
    }

    /// A claim for the trigger returned `count` events: they spend tokens, and one may be
    /// the half-open breaker's probe.
    mutating func claimed(_ count: Int, of trigger: TriggerRef) {
        gates[trigger]?.bucket?.take(count)
        gates[trigger]?.breaker?.claimed(count)
    }

    /// A queued job of the trigger was never sent: if it was the probe, another may go.
    mutating func probeAbandoned(_ trigger: TriggerRef) {
        gates[trigger]?.breaker?.probeAbandoned()
    }

    /// One finished attempt, for the breaker and `disable_after`. `breakerFailure` is nil when
    /// the outcome says nothing about the receiver's health.
    mutating func recordOutcome(
        _ trigger: TriggerRef, succeeded: Bool, breakerFailure: Bool?, now: ContinuousClock.Instant
    ) -> [Action] {
        guard var gate = gates[trigger] else { return [] }
        var actions: [Action] = []
        if let breakerFailure, let transition = gate.breaker?.record(failure: breakerFailure, now: now) {
            actions.append(.circuit(trigger, transition))
            if case .opened = transition { actions.append(.giveBackQueued(trigger, .circuitOpen)) }
        }
        if succeeded {
            gate.failingSince = nil
        } else if let limit = gate.disableAfter {
            let since = gate.failingSince ?? now
            gate.failingSince = since
            if now - since >= limit {
                gates[trigger] = gate
                return actions + disable(trigger, reason: "no successful delivery for \(limit.components.seconds) s (disable_after)")
            }
        }
        gates[trigger] = gate
        return actions
    }

    /// Disables a trigger in this worker (a receiver said so, or `disable_after`).
    mutating func disable(_ trigger: TriggerRef, reason: String) -> [Action] {
        guard gates[trigger]?.disabled == false else { return [] }
        gates[trigger]?.disabled = true
        return [.disabled(trigger, reason: reason), .giveBackQueued(trigger, .disabled)]
    }

    /// Sets whether a trigger is disabled as its database says. Returns whether it changed.
    mutating func setDisabled(_ trigger: TriggerRef, _ disabled: Bool) -> Bool {
        guard let gate = gates[trigger], gate.disabled != disabled else { return false }
        gates[trigger]?.disabled = disabled
        if !disabled { gates[trigger]?.failingSince = nil }
        return true
    }

    /// The database granted `count` tokens of a shared limit; none means ask again after one
    /// token's time.
    mutating func granted(_ count: Int, to trigger: TriggerRef, now: ContinuousClock.Instant) {
        guard var gate = gates[trigger], var bucket = gate.bucket else { return }
        bucket.grant(count)
        gate.bucket = bucket
        gate.nextGrantRequest = count > 0 ? nil : now + .seconds(max(0.02, 1 / max(bucket.rate, 0.001)))
        gates[trigger] = gate
    }
}
