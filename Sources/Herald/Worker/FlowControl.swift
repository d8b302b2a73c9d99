/// What flow control needs to know about one claimed event waiting to be sent.
public protocol FlowJob {
    /// scheme://host:port, the unit of the per-host limit.
    var hostKey: String { get }
    var triggerName: String { get }
    /// The job must not start after this instant: its lease ends one request timeout later,
    /// and a request still running when the lease ends could be sent again by another worker.
    var startDeadline: ContinuousClock.Instant { get }
}

/// How one trigger is routed and how far ahead of its host it may be claimed.
public struct FlowRoute: Sendable, Equatable {
    public var trigger: String
    public var hostKey: String
    /// Request timeout of the trigger, which bounds how long an in-flight request holds a slot.
    public var timeout: Duration
    /// Rate limit, circuit breaker, `disable_after`.
    public var protection: TriggerProtection

    public init(trigger: String, hostKey: String, timeout: Duration, protection: TriggerProtection = TriggerProtection()) {
        self.trigger = trigger
        self.hostKey = hostKey
        self.timeout = timeout
        self.protection = protection
    }
}

/// The worker's flow control: one value-type state machine, no I/O, no clock of its own
/// (every call that depends on time takes `now`). It owns the numbers the claimer, the
/// delivery threads and the recorder act on — queued and in-flight jobs per host and in
/// total, the recorder's backlog, start deadlines — and answers their questions:
///
/// - ``planClaim(now:)``: claim how many events, for which triggers, or wait (and until when).
/// - ``takeStartable(freeSlots:now:)``: which queued jobs start now, which lost their lease.
/// - ``finished(hostKeys:)``, ``recorded(_:)``: bookkeeping that may free room.
///
/// Wake-ups are level-based: every transition that can turn the claimer's "wait for room"
/// into "claim" reports it (`wakeClaimer`), and ``pollTimeout(freeSlots:now:)`` is zero
/// whenever a delivery thread has a job it may start, so neither side sleeps on work.
public struct FlowControl<Job: FlowJob> {
    public struct Limits: Sendable, Equatable {
        public var poolSize: Int
        public var perHostLimit: Int
        public var fetchBatchSize: Int
        public var leaseSeconds: Int
        /// Finished outcomes not yet written above which nothing more is claimed.
        public var recorderBacklogLimit: Int
        public var pollInterval: Duration

        public init(
            poolSize: Int, perHostLimit: Int, fetchBatchSize: Int, leaseSeconds: Int, recorderBacklogLimit: Int,
            pollInterval: Duration
        ) {
            self.poolSize = poolSize
            self.perHostLimit = perHostLimit
            self.fetchBatchSize = fetchBatchSize
            self.leaseSeconds = leaseSeconds
            self.recorderBacklogLimit = recorderBacklogLimit
            self.pollInterval = pollInterval
        }
    }

    /// The claimer's next step.
    public enum ClaimPlan: Equatable {
        /// Claim up to this many due events per trigger (never more than a batch in total).
        case claim([String: Int])
        /// Nothing to claim now: sleep until `until` (the next poll), a NOTIFY or a wake-up;
        /// nil means "until woken": the claimer waits for room, which a transition reports.
        case wait(until: ContinuousClock.Instant?)
        case stop
    }

    /// Why queued jobs were given back unsent, or a trigger held back.
    public enum DeferReason: String, Sendable, Equatable {
        case rateLimit = "rate_limit"
        case circuitOpen = "circuit_open"
        case disabled
    }

    /// Something the worker must act on outside the lock: log, count, alert, write.
    public enum Notice {
        case circuit(trigger: String, CircuitBreaker.Transition)
        case disabled(trigger: String, reason: String)
        /// Queued jobs given back unsent: their leases should be released so the events are
        /// due again at once (for whichever worker may send them).
        case release([Job], DeferReason)
        /// A claim for the trigger was cut short by its rate limit.
        case rateLimited(trigger: String)
    }

    /// A delivery thread's next step.
    public struct DeliveryTurn {
        public var start: [Job] = []
        /// Jobs whose start deadline passed while queued: never sent; the event is simply due
        /// again when its lease ends.
        public var dropped: [Job] = []
        public var wakeClaimer = false
    }

    private struct HostState {
        var queue: [Job] = []
        var head = 0
        var inFlight = 0
        /// How many jobs may wait for this host beyond the ones running (see `prefetch`).
        var prefetch: Int
        var triggers: [String]

        var queued: Int { queue.count - head }

        mutating func popFirst() -> Job {
            let job = queue[head]
            head += 1
            if head == queue.count {
                queue.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 64 && head * 2 >= queue.count {
                queue.removeFirst(head)
                head = 0
            }
            return job
        }
    }

    public let limits: Limits
    private var hosts: [String: HostState] = [:]
    private var hostOrder: [String]
    private let routes: [String: FlowRoute]
    private let triggerOrder: [String]
    public private(set) var queuedTotal = 0
    public private(set) var inFlightTotal = 0
    public private(set) var recorderBacklog = 0
    public private(set) var isStopping = false
    /// Triggers that may have due events: all of them after a NOTIFY or a poll tick; a trigger
    /// leaves the set when a claim returned fewer of its events than asked for.
    private var mayHaveDue: Set<String>
    private var nextPoll: ContinuousClock.Instant
    /// True while the claimer sleeps because there is no room; cleared when it is woken.
    private var claimerWaitsForRoom = false
    private var earliestDeadline: ContinuousClock.Instant?
    /// Rotates which trigger and host go first, so none is favoured when room is short.
    private var rotation = 0
    private var gates: [String: TriggerGate] = [:]
    /// Waiting to be taken by ``takeNotices()``.
    private var notices: [Notice] = []

    public init(limits: Limits, routes: [FlowRoute], now: ContinuousClock.Instant) {
        self.limits = limits
        var byTrigger: [String: FlowRoute] = [:]
        var hosts: [String: HostState] = [:]
        let perHost = min(limits.perHostLimit, limits.poolSize)
        for route in routes {
            byTrigger[route.trigger] = route
            let prefetch = Self.prefetch(perHost: perHost, limits: limits, timeout: route.timeout)
            if var host = hosts[route.hostKey] {
                host.prefetch = min(host.prefetch, prefetch)
                host.triggers.append(route.trigger)
                hosts[route.hostKey] = host
            } else {
                hosts[route.hostKey] = HostState(prefetch: prefetch, triggers: [route.trigger])
            }
        }
        self.routes = byTrigger
        self.hosts = hosts
        gates = byTrigger.mapValues { TriggerGate(protection: $0.protection, now: now) }
        hostOrder = hosts.keys.sorted()
        triggerOrder = byTrigger.keys.sorted()
        mayHaveDue = Set(byTrigger.keys)
        nextPoll = now
    }

    /// How many jobs may queue for a host beyond those running: two batches, so that one
    /// batch is still queued while the next claim runs (a claim takes milliseconds, and at
    /// 10k events/s a small pool drains a batch of 50 in less), but no more than the host can
    /// start within the lease even if every request before them runs to its timeout:
    /// (lease − timeout) / timeout rounds of `perHost` requests.
    static func prefetch(perHost: Int, limits: Limits, timeout: Duration) -> Int {
        let timeoutSeconds = max(timeout.components.seconds, 1)
        let rounds = max(1, (Int64(limits.leaseSeconds) - timeoutSeconds) / timeoutSeconds)
        return max(1, min(2 * limits.fetchBatchSize, perHost * Int(min(rounds, Int64(Int32.max)))))
    }

    private var perHostLimit: Int { min(limits.perHostLimit, limits.poolSize) }

    // MARK: Claimer

    /// What the claimer does next. A claim is planned only while the recorder keeps up, the
    /// pool plus two batches has room, and some trigger that may have due events has a host
    /// that is short of queued work (below half its prefetch) with room for more. A host
    /// that is saturated is left out, so it never blocks claims for the others.
    public mutating func planClaim(now: ContinuousClock.Instant) -> ClaimPlan {
        if isStopping { return .stop }
        if now >= nextPoll {
            // The poll keeps its own cadence: claims for busy triggers do not postpone it,
            // or a quiet trigger's retries would never be looked for.
            mayHaveDue = Set(triggerOrder)
            nextPoll = now + limits.pollInterval
        }
        for trigger in triggerOrder {
            if let transition = gates[trigger]?.breaker?.advance(now: now) {
                notices.append(.circuit(trigger: trigger, transition))
            }
        }
        let limitsByTrigger = claimLimits(now: now)
        if limitsByTrigger.isEmpty {
            // Blocked by room only if some trigger with due events is not held back by its
            // own gate; those are woken by a transition, the gates by the clock.
            var blockedByRoom = false
            for trigger in mayHaveDue where gateAllowance(for: trigger, now: now) != 0 {
                blockedByRoom = true
                break
            }
            claimerWaitsForRoom = blockedByRoom
            return .wait(until: blockedByRoom ? nil : min(nextPoll, nextGateChange(now: now) ?? nextPoll))
        }
        claimerWaitsForRoom = false
        rotation &+= 1
        return .claim(limitsByTrigger)
    }

    /// What a trigger's gate allows now: nil for no limit, else that many events.
    private mutating func gateAllowance(for trigger: String, now: ContinuousClock.Instant) -> Int? {
        guard var gate = gates[trigger] else { return nil }
        defer { gates[trigger] = gate }
        if gate.disabled { return 0 }
        var allowance = gate.breaker?.claimAllowance()
        if var bucket = gate.bucket {
            let tokens = bucket.available(now: now)
            gate.bucket = bucket
            allowance = min(allowance ?? tokens, tokens)
        }
        return allowance
    }

    /// The earliest instant a gate that now holds a trigger back may let it through.
    private func nextGateChange(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        var earliest: ContinuousClock.Instant?
        for trigger in mayHaveDue {
            guard let gate = gates[trigger], !gate.disabled else { continue }
            var candidates: [ContinuousClock.Instant] = []
            if case .open(let until) = gate.breaker?.state { candidates.append(until) }
            if let next = gate.bucket?.nextToken(after: now), gate.bucket.map({ $0.tokens < 1 }) ?? false {
                candidates.append(next)
            }
            if gate.isShared, let next = gate.nextGrantRequest { candidates.append(next) }
            for candidate in candidates where earliest.map({ candidate < $0 }) ?? true { earliest = candidate }
        }
        return earliest
    }

    /// Records a claim's result: its jobs join their hosts' queues, and a trigger that got
    /// fewer events than asked for has nothing more due until the next NOTIFY or poll.
    /// Returns whether delivery threads should be woken.
    public mutating func claimed(_ jobs: [Job], limits asked: [String: Int]) -> Bool {
        var counts: [String: Int] = [:]
        for job in jobs {
            counts[job.triggerName, default: 0] += 1
            if hosts[job.hostKey] == nil {
                // A host no route named (not expected): queue it with the smallest prefetch.
                hosts[job.hostKey] = HostState(prefetch: 1, triggers: [])
                hostOrder.append(job.hostKey)
            }
            hosts[job.hostKey]?.queue.append(job)
            if earliestDeadline.map({ job.startDeadline < $0 }) ?? true { earliestDeadline = job.startDeadline }
        }
        queuedTotal += jobs.count
        for (trigger, limit) in asked {
            let count = counts[trigger, default: 0]
            if count < limit { mayHaveDue.remove(trigger) }
            gates[trigger]?.bucket?.take(count)
            gates[trigger]?.breaker?.claimed(count)
        }
        return !jobs.isEmpty
    }

    /// A NOTIFY arrived: any trigger may have new events.
    public mutating func notified() {
        mayHaveDue = Set(triggerOrder)
    }

    /// Per-trigger claim sizes: each eligible host's room split over its triggers, then the
    /// global room (one batch at most) shared out so that no trigger takes another's part.
    private mutating func claimLimits(now: ContinuousClock.Instant) -> [String: Int] {
        guard recorderBacklog < limits.recorderBacklogLimit else { return [:] }
        let globalRoom = min(limits.fetchBatchSize, limits.poolSize + 2 * limits.fetchBatchSize - inFlightTotal - queuedTotal)
        guard globalRoom > 0 else { return [:] }
        var caps: [(trigger: String, cap: Int)] = []
        let triggerCount = triggerOrder.count
        for offset in 0..<triggerCount {
            let trigger = triggerOrder[(offset + rotation) % triggerCount]
            guard mayHaveDue.contains(trigger), let route = routes[trigger], let host = hosts[route.hostKey] else {
                continue
            }
            let room = perHostLimit + host.prefetch - host.inFlight - host.queued
            let hungry = host.queued < max(1, host.prefetch / 2)
            guard hungry, room > 0 else { continue }
            let sharing = host.triggers.filter { mayHaveDue.contains($0) }.count
            var cap = (room + sharing - 1) / max(1, sharing)
            if let allowance = gateAllowance(for: trigger, now: now) {
                if allowance < cap, gates[trigger]?.bucket != nil { notices.append(.rateLimited(trigger: trigger)) }
                cap = min(cap, allowance)
            }
            if cap > 0 { caps.append((trigger, cap)) }
        }
        return Self.share(globalRoom, among: caps)
    }

    /// Water-filling: every trigger gets an equal part of `total`, capped by its own limit;
    /// what a capped trigger leaves is shared among the rest. Order breaks ties.
    static func share(_ total: Int, among caps: [(trigger: String, cap: Int)]) -> [String: Int] {
        var result: [String: Int] = [:]
        var remaining = total
        var open = caps.filter { $0.cap > 0 }
        while remaining > 0 && !open.isEmpty {
            let part = max(1, remaining / open.count)
            var next: [(trigger: String, cap: Int)] = []
            for entry in open where remaining > 0 {
                let given = min(part, entry.cap - result[entry.trigger, default: 0], remaining)
                result[entry.trigger, default: 0] += given
                remaining -= given
                if result[entry.trigger, default: 0] < entry.cap { next.append(entry) }
            }
            open = next
        }
        return result.filter { $0.value > 0 }
    }

    // MARK: Delivery threads

    /// Jobs a delivery thread with `freeSlots` free transfer slots starts now, round-robin
    /// over hosts within the pool and per-host limits, after dropping every queued job whose
    /// start deadline has passed.
    public mutating func takeStartable(freeSlots: Int, now: ContinuousClock.Instant) -> DeliveryTurn {
        var turn = DeliveryTurn()
        if let deadline = earliestDeadline, now > deadline {
            turn.dropped = dropExpired(now: now)
        }
        var budget = min(freeSlots, limits.poolSize - inFlightTotal)
        if budget > 0 && queuedTotal > 0 && !isStopping {
            let count = hostOrder.count
            var progressed = true
            while budget > 0 && progressed {
                progressed = false
                for offset in 0..<count where budget > 0 {
                    let key = hostOrder[(offset + rotation) % count]
                    guard var host = hosts[key], host.queued > 0, host.inFlight < perHostLimit else { continue }
                    turn.start.append(host.popFirst())
                    host.inFlight += 1
                    hosts[key] = host
                    budget -= 1
                    progressed = true
                }
            }
            queuedTotal -= turn.start.count
            inFlightTotal += turn.start.count
            if turn.start.count > 0 { rotation &+= 1 }
        }
        if !turn.start.isEmpty || !turn.dropped.isEmpty { turn.wakeClaimer = claimerShouldWake(now: now) }
        return turn
    }

    private mutating func dropExpired(now: ContinuousClock.Instant) -> [Job] {
        var dropped: [Job] = []
        var earliest: ContinuousClock.Instant?
        for key in hostOrder {
            guard var host = hosts[key], host.queued > 0 else { continue }
            var kept: [Job] = []
            for job in host.queue[host.head...] {
                if job.startDeadline < now {
                    dropped.append(job)
                } else {
                    kept.append(job)
                    if earliest.map({ job.startDeadline < $0 }) ?? true { earliest = job.startDeadline }
                }
            }
            host.queue = kept
            host.head = 0
            hosts[key] = host
        }
        queuedTotal -= dropped.count
        earliestDeadline = earliest
        for job in dropped { gates[job.triggerName]?.breaker?.probeAbandoned() }
        return dropped
    }

    /// Whether a thread with `freeSlots` free slots could start a job now.
    public func hasStartable(freeSlots: Int) -> Bool {
        guard freeSlots > 0, !isStopping, queuedTotal > 0, inFlightTotal < limits.poolSize else { return false }
        return hosts.values.contains { $0.queued > 0 && $0.inFlight < perHostLimit }
    }

    /// How long a delivery thread may sleep in `curl_multi_poll`: zero while it has a job to
    /// start, otherwise until the next queued job's start deadline, at most `maximum`.
    public func pollTimeout(freeSlots: Int, now: ContinuousClock.Instant, maximum: Duration = .seconds(1)) -> Duration {
        if hasStartable(freeSlots: freeSlots) { return .zero }
        guard let deadline = earliestDeadline else { return maximum }
        return max(.milliseconds(1), min(maximum, deadline - now))
    }

    /// Transfers ended (with any outcome): their slots are free and their outcomes wait for
    /// the recorder. Returns whether the claimer should be woken.
    public mutating func finished(hostKeys: [String], now: ContinuousClock.Instant = .now) -> Bool {
        release(hostKeys)
        recorderBacklog += hostKeys.count
        return claimerShouldWake(now: now)
    }

    /// Transfers abandoned at shutdown: their slots are free, no outcome follows.
    public mutating func aborted(hostKeys: [String]) {
        release(hostKeys)
    }

    private mutating func release(_ hostKeys: [String]) {
        for key in hostKeys {
            hosts[key]?.inFlight -= 1
        }
        inFlightTotal -= hostKeys.count
    }

    // MARK: Recorder

    /// Outcomes were written (or dropped as unwritable). Returns whether to wake the claimer.
    public mutating func recorded(_ count: Int, now: ContinuousClock.Instant = .now) -> Bool {
        recorderBacklog = max(0, recorderBacklog - count)
        return claimerShouldWake(now: now)
    }

    /// Heads of keyed events finished (delivered or failed): the events waiting behind them
    /// are due now. Their triggers may have due events again; returns whether the claimer
    /// should be woken to claim them, with no poll delay.
    public mutating func keysReleased(triggers: Set<String>, now: ContinuousClock.Instant = .now) -> Bool {
        guard !isStopping else { return false }
        let known = triggers.filter { routes[$0] != nil }
        guard !known.isEmpty else { return false }
        mayHaveDue.formUnion(known)
        let noticesBefore = notices.count
        let wouldClaim = !claimLimits(now: now).isEmpty
        notices.removeSubrange(noticesBefore...)  // a dry run reports nothing
        if wouldClaim { claimerWaitsForRoom = false }
        return wouldClaim
    }

    // MARK: Trigger gates

    /// Counts one finished attempt for the trigger's breaker and `disable_after`.
    /// `breakerFailure` is nil when the outcome says nothing about the receiver's health.
    public mutating func recordOutcome(
        trigger: String, succeeded: Bool, breakerFailure: Bool?, now: ContinuousClock.Instant
    ) {
        guard var gate = gates[trigger] else { return }
        if let breakerFailure, let transition = gate.breaker?.record(failure: breakerFailure, now: now) {
            notices.append(.circuit(trigger: trigger, transition))
            if case .opened = transition {
                gates[trigger] = gate
                dropQueued(of: trigger, reason: .circuitOpen)
                gate = gates[trigger] ?? gate
            }
        }
        if succeeded {
            gate.failingSince = nil
        } else if let limit = gate.disableAfter {
            let since = gate.failingSince ?? now
            gate.failingSince = since
            if now - since >= limit, !gate.disabled {
                gates[trigger] = gate
                disable(trigger, reason: "no successful delivery for \(limit.components.seconds) s (disable_after)")
                return
            }
        }
        gates[trigger] = gate
    }

    /// Disables a trigger in this worker at once (a receiver said so, or `disable_after`):
    /// nothing more is claimed, queued jobs are given back unsent. The caller persists it.
    public mutating func disable(_ trigger: String, reason: String) {
        guard gates[trigger]?.disabled == false else { return }
        gates[trigger]?.disabled = true
        notices.append(.disabled(trigger: trigger, reason: reason))
        dropQueued(of: trigger, reason: .disabled)
    }

    /// The disabled triggers as stored in the database (every worker honours them).
    /// Returns whether a trigger was enabled again (the claimer should look for its events).
    @discardableResult
    public mutating func setDisabled(_ disabled: Set<String>) -> Bool {
        var enabledAgain = false
        for trigger in triggerOrder {
            let shouldBeDisabled = disabled.contains(trigger)
            guard gates[trigger]?.disabled != shouldBeDisabled else { continue }
            gates[trigger]?.disabled = shouldBeDisabled
            if shouldBeDisabled {
                dropQueued(of: trigger, reason: .disabled)
            } else {
                gates[trigger]?.failingSince = nil
                mayHaveDue.insert(trigger)
                enabledAgain = true
            }
        }
        return enabledAgain
    }

    public func isDisabled(_ trigger: String) -> Bool { gates[trigger]?.disabled ?? false }

    /// Every routed trigger, in a stable order.
    public var triggers: [String] { triggerOrder }

    public func circuitState(_ trigger: String) -> CircuitBreaker.State? { gates[trigger]?.breaker?.state }

    /// Shared rate limits whose local tokens ran out while their trigger may have due events:
    /// how many tokens to ask PostgreSQL for (a block of about a quarter second's worth).
    public func tokenRequests(now: ContinuousClock.Instant) -> [String: Int] {
        var requests: [String: Int] = [:]
        for trigger in mayHaveDue {
            guard let gate = gates[trigger], gate.isShared, !gate.disabled, let bucket = gate.bucket,
                bucket.tokens < 1, gate.breaker?.claimAllowance() != 0
            else { continue }
            if let next = gate.nextGrantRequest, now < next { continue }
            requests[trigger] = max(1, min(Int(bucket.burst), Int((bucket.rate / 4).rounded(.up))))
        }
        return requests
    }

    /// PostgreSQL granted `count` tokens of a shared limit; none means ask again after one
    /// token's time.
    public mutating func granted(_ count: Int, to trigger: String, now: ContinuousClock.Instant) {
        guard var gate = gates[trigger], var bucket = gate.bucket else { return }
        bucket.grant(count)
        gate.bucket = bucket
        gate.nextGrantRequest = count > 0 ? nil : now + .seconds(max(0.02, 1 / max(bucket.rate, 0.001)))
        gates[trigger] = gate
    }

    /// Takes what happened since the last call, in order.
    public mutating func takeNotices() -> [Notice] {
        defer { notices.removeAll(keepingCapacity: true) }
        return notices
    }

    /// Gives back a trigger's queued jobs unsent (breaker opened, trigger disabled).
    private mutating func dropQueued(of trigger: String, reason: DeferReason) {
        guard let route = routes[trigger], var host = hosts[route.hostKey], host.queued > 0 else { return }
        var kept: [Job] = []
        var dropped: [Job] = []
        for job in host.queue[host.head...] {
            if job.triggerName == trigger { dropped.append(job) } else { kept.append(job) }
        }
        host.queue = kept
        host.head = 0
        hosts[route.hostKey] = host
        queuedTotal -= dropped.count
        if !dropped.isEmpty { notices.append(.release(dropped, reason)) }
    }

    // MARK: Shutdown

    /// Stops claiming and starting; returns the queued jobs, which are never sent.
    public mutating func beginStopping() -> [Job] {
        isStopping = true
        var dropped: [Job] = []
        for key in hostOrder {
            guard var host = hosts[key] else { continue }
            dropped += host.queue[host.head...]
            host.queue = []
            host.head = 0
            hosts[key] = host
        }
        queuedTotal = 0
        earliestDeadline = nil
        return dropped
    }

    /// Level-based: true (once) when the claimer sleeps for lack of room and now has some.
    private mutating func claimerShouldWake(now: ContinuousClock.Instant) -> Bool {
        guard claimerWaitsForRoom, !isStopping else { return false }
        let noticesBefore = notices.count
        let wouldClaim = !claimLimits(now: now).isEmpty
        notices.removeSubrange(noticesBefore...)  // a dry run reports nothing
        guard wouldClaim else { return false }
        claimerWaitsForRoom = false
        return true
    }

    /// Queued jobs for one host, for tests and stats.
    public func queued(host: String) -> Int { hosts[host]?.queued ?? 0 }

    /// Running transfers to one host.
    public func inFlight(host: String) -> Int { hosts[host]?.inFlight ?? 0 }
}
