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

    private var gates: [TriggerRef: TriggerGate] = [:]
    /// Triggers that use another trigger's gate (``FlowRoute/sharesGateOf``): a Citus worker
    /// node's trigger shares its coordinator's, so the cluster has one breaker, one rate limit
    /// and one disabled state per trigger, as one server has.
    private var sharing: [TriggerRef: TriggerRef] = [:]
    /// Each shared gate's triggers, its own first.
    private var members: [TriggerRef: [TriggerRef]] = [:]
    /// What each trigger of a shared gate has planned to claim and not yet reported: its
    /// tokens (and the half-open probe) are spent when the claim is planned, for the claimers
    /// of several nodes plan against the one gate each on its own thread.
    private var reserved: [TriggerRef: Reservation] = [:]

    private struct Reservation {
        var count: Int
        /// Whether it took the half-open breaker's probe (only then does giving it back free it).
        var probe: Bool
    }

    init(routes: [TriggerRef: FlowRoute], now: ContinuousClock.Instant) {
        add(routes, now: now)
    }

    /// Gates for routes added while running; a trigger that has one keeps it.
    mutating func add(_ routes: [TriggerRef: FlowRoute], now: ContinuousClock.Instant) {
        // Own gates first, so that a route sharing one finds it.
        for (ref, route) in routes where route.sharesGateOf == nil && gates[ref] == nil {
            gates[ref] = TriggerGate(protection: route.protection, now: now)
        }
        for (ref, route) in routes.sorted(by: { $0.key < $1.key }) where gates[ref] == nil && sharing[ref] == nil {
            if let owner = route.sharesGateOf, gates[owner] != nil {
                sharing[ref] = owner
                members[owner, default: [owner]].append(ref)
            } else {
                gates[ref] = TriggerGate(protection: route.protection, now: now)
            }
        }
    }

    /// The trigger whose gate `trigger` uses.
    private func key(_ trigger: TriggerRef) -> TriggerRef {
        // Most workers share no gate: no lookup (a trigger reference hashes two strings).
        sharing.isEmpty ? trigger : sharing[trigger] ?? trigger
    }

    /// Changes the gate `trigger` uses where it is stored; nil when it has none. Not
    /// `gates[key]?.…`: the dictionary's optional-yielding accessor allocated its frame on the
    /// heap for a value this size, once per change (most of the claimer's allocations per plan).
    @discardableResult
    private mutating func withGate<Result>(_ trigger: TriggerRef, _ change: (inout TriggerGate) -> Result) -> Result? {
        guard let index = gates.index(forKey: key(trigger)) else { return nil }
        return change(&gates.values[index])
    }

    /// Every trigger using the gate `trigger` uses, its owner first.
    func members(of trigger: TriggerRef) -> [TriggerRef] {
        let owner = key(trigger)
        return members[owner] ?? [owner]
    }

    // MARK: Questions

    /// What a trigger's gate allows now: nil for no limit, else that many events.
    func allowance(for trigger: TriggerRef, now: ContinuousClock.Instant) -> Int? {
        guard let gate = gates[key(trigger)] else { return nil }
        if gate.disabled { return 0 }
        var allowance = gate.breaker?.claimAllowance()
        if let bucket = gate.bucket {
            let tokens = bucket.tokens(at: now)
            allowance = min(allowance ?? tokens, tokens)
        }
        return allowance
    }

    func hasRateLimit(_ trigger: TriggerRef) -> Bool { gates[key(trigger)]?.bucket != nil }

    /// The earliest instant one of these triggers' gates, now holding it back, may let it through.
    func nextChange(of triggers: some Sequence<TriggerRef>, now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        var earliest: ContinuousClock.Instant?
        for trigger in triggers {
            guard let gate = gates[key(trigger)], !gate.disabled else { continue }
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

    func isDisabled(_ trigger: TriggerRef) -> Bool { gates[key(trigger)]?.disabled ?? false }

    func circuitState(_ trigger: TriggerRef) -> CircuitBreaker.State? { gates[key(trigger)]?.breaker?.state }

    /// Shared rate limits among `triggers` whose local tokens ran out: how many tokens to ask
    /// the database for (a block of about a quarter second's worth), by trigger name.
    func tokenRequests(of triggers: some Sequence<TriggerRef>, now: ContinuousClock.Instant) -> [String: Int] {
        var requests: [String: Int] = [:]
        for trigger in triggers {
            guard let gate = gates[key(trigger)], gate.isShared, !gate.disabled, let bucket = gate.bucket,
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
            let transition = withGate(trigger) { gate in
                gate.bucket?.refill(now: now)
                return gate.breaker?.advance(now: now)
            }
            if case let transition?? = transition { actions.append(.circuit(trigger, transition)) }
        }
        return actions
    }

    /// A claim of up to `count` events is planned. A shared gate spends them now, so that
    /// another node's claimer planning at the same time sees them gone. (A reservation its
    /// claimer never reported was given back when the claim failed, or at the start of this
    /// plan: ``releaseReservations(of:)``.)
    mutating func reserve(_ count: Int, of trigger: TriggerRef) {
        guard members[key(trigger)] != nil else { return }
        let probe = withGate(trigger) { gate in
            let probe = gate.breaker?.claimAllowance() == 1
            gate.bucket?.take(count)
            gate.breaker?.claimed(count)
            return probe
        } ?? false
        reserved[trigger] = Reservation(count: count, probe: probe && count > 0)
    }

    /// Gives back what these triggers reserved and never reported: a claimer plans again only
    /// after its last claim ended, so a reservation still here is one whose claim failed.
    mutating func releaseReservations(of triggers: [TriggerRef]) {
        guard !reserved.isEmpty else { return }
        for trigger in triggers {
            if let stale = reserved.removeValue(forKey: trigger) { giveBack(stale, of: trigger) }
        }
    }

    private mutating func giveBack(_ reservation: Reservation, of trigger: TriggerRef) {
        withGate(trigger) { gate in
            gate.bucket?.refund(reservation.count)
            if reservation.probe { gate.breaker?.probeAbandoned() }
        }
    }

    /// A claim for the trigger returned `count` events: they spend tokens, and one may be
    /// the half-open breaker's probe. For a shared gate, what was reserved and not claimed
    /// is given back.
    mutating func claimed(_ count: Int, of trigger: TriggerRef) {
        if let planned = reserved.removeValue(forKey: trigger) {
            if count < planned.count {
                giveBack(Reservation(count: planned.count - count, probe: planned.probe && count == 0), of: trigger)
            }
            return
        }
        withGate(trigger) { gate in
            gate.bucket?.take(count)
            gate.breaker?.claimed(count)
        }
    }

    /// A queued job of the trigger was never sent: if it was the probe, another may go.
    mutating func probeAbandoned(_ trigger: TriggerRef) {
        withGate(trigger) { gate in gate.breaker?.probeAbandoned() }
    }

    /// One finished attempt, for the breaker and `disable_after`. `breakerFailure` is nil when
    /// the outcome says nothing about the receiver's health.
    mutating func recordOutcome(
        _ trigger: TriggerRef, succeeded: Bool, breakerFailure: Bool?, now: ContinuousClock.Instant
    ) -> [Action] {
        recordOutcomes(trigger, [(succeeded, breakerFailure)], now: now)
    }

    /// Attempts of one trigger, in the order they finished, with one lookup of its gate.
    mutating func recordOutcomes(
        _ trigger: TriggerRef, _ attempts: [(succeeded: Bool, breakerFailure: Bool?)], now: ContinuousClock.Instant
    ) -> [Action] {
        // The gate is changed where it is stored, through one access: a copy taken out and put
        // back would share the breaker's window with the stored one (counting into it would
        // copy the window), and each read of a field through the dictionary copied the gate.
        withGate(trigger) { gate in
            var actions: [Action] = []
            for (succeeded, breakerFailure) in attempts {
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
                        actions += Self.disable(
                            &gate, trigger, reason: "no successful delivery for \(limit.components.seconds) s (disable_after)")
                    }
                }
            }
            return actions
        } ?? []
    }

    /// Disables a trigger in this worker (a receiver said so, or `disable_after`).
    mutating func disable(_ trigger: TriggerRef, reason: String) -> [Action] {
        withGate(trigger) { gate in Self.disable(&gate, trigger, reason: reason) } ?? []
    }

    private static func disable(_ gate: inout TriggerGate, _ trigger: TriggerRef, reason: String) -> [Action] {
        guard !gate.disabled else { return [] }
        gate.disabled = true
        return [.disabled(trigger, reason: reason), .giveBackQueued(trigger, .disabled)]
    }

    /// Sets whether a trigger is disabled as its database says. Returns whether it changed.
    /// For a shared gate only the owner's database counts (the coordinator's, on Citus):
    /// `disable-trigger`, `enable-trigger` and the worker's own disables write every node's
    /// too, but one write that failed on a node must not make the gate flip at every refresh.
    mutating func setDisabled(_ trigger: TriggerRef, _ disabled: Bool) -> Bool {
        if sharing[trigger] != nil { return false }
        let changed = withGate(trigger) { gate in
            guard gate.disabled != disabled else { return false }
            gate.disabled = disabled
            if !disabled { gate.failingSince = nil }
            return true
        }
        return changed ?? false
    }

    /// The database granted `count` tokens of a shared limit; none means ask again after one
    /// token's time.
    mutating func granted(_ count: Int, to trigger: TriggerRef, now: ContinuousClock.Instant) {
        withGate(trigger) { gate in
            guard var bucket = gate.bucket else { return }
            bucket.grant(count)
            gate.bucket = bucket
            gate.nextGrantRequest = count > 0 ? nil : now + .seconds(max(0.02, 1 / max(bucket.rate, 0.001)))
        }
    }
}
