/// What flow control needs to know about one claimed event waiting to be sent.
public protocol FlowJob {
    /// scheme://host:port, the unit of the per-host limit.
    var hostKey: String { get }
    var triggerName: String { get }
    /// The source (database) the job was claimed from.
    var sourceName: String { get }
    /// The job must not start after this instant: its lease ends one request timeout later,
    /// and a request still running when the lease ends could be sent again by another worker.
    var startDeadline: ContinuousClock.Instant { get }
}

extension FlowJob {
    public var sourceName: String { SourceConfig.defaultName }
    var triggerRef: TriggerRef { TriggerRef(source: sourceName, name: triggerName) }
}

/// How one trigger is routed and how far ahead of its host it may be claimed.
public struct FlowRoute: Sendable, Equatable {
    public var trigger: String
    /// The source whose claimer claims the trigger's events.
    public var source: String
    public var hostKey: String
    /// Request timeout of the trigger, which bounds how long an in-flight request holds a slot.
    public var timeout: Duration
    /// Rate limit, circuit breaker, `disable_after`.
    public var protection: TriggerProtection

    public init(
        trigger: String, source: String = SourceConfig.defaultName, hostKey: String, timeout: Duration,
        protection: TriggerProtection = TriggerProtection()
    ) {
        self.trigger = trigger
        self.source = source
        self.hostKey = hostKey
        self.timeout = timeout
        self.protection = protection
    }

    var ref: TriggerRef { TriggerRef(source: source, name: trigger) }
}

/// The worker's flow control: one value-type state machine, no I/O, no clock of its own
/// (every call that depends on time takes `now`). It owns the numbers the claimers, the
/// delivery threads and the recorders act on — queued and in-flight jobs per host, per source
/// and in total, each source's recorder backlog, start deadlines — and answers their questions:
///
/// - ``planClaim(source:now:)``: claim how many events of a source, for which triggers, or
///   wait (and until when).
/// - ``takeStartable(freeSlots:now:)``: which queued jobs start now, which lost their lease.
/// - ``finished(_:now:)``, ``recorded(_:source:now:)``: bookkeeping that may free room.
///
/// Wake-ups are level-based: every transition that can turn a claimer's "wait for room"
/// into "claim" reports it (`wakeClaimers`), and ``pollTimeout(freeSlots:now:)`` is zero
/// whenever a delivery thread has a job it may start, so neither side sleeps on work.
///
/// Sources (databases) share the pool fairly: see ``sourceRoom(_:)``.
public struct FlowControl<Job: FlowJob> {
    public struct Limits: Sendable, Equatable {
        public var poolSize: Int
        public var perHostLimit: Int
        public var fetchBatchSize: Int
        public var leaseSeconds: Int
        /// Finished outcomes of one source not yet written above which nothing more is
        /// claimed from that source.
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

        /// Jobs queued or in flight at most, over all sources: the pool plus two batches.
        var capacity: Int { poolSize + 2 * fetchBatchSize }
    }

    /// A claimer's next step.
    public enum ClaimPlan: Equatable {
        /// Claim up to this many due events per trigger of the source (never more than a
        /// batch in total).
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
        case circuit(trigger: TriggerRef, CircuitBreaker.Transition)
        case disabled(trigger: TriggerRef, reason: String)
        /// Queued jobs given back unsent: their leases should be released so the events are
        /// due again at once (for whichever worker may send them).
        case release([Job], DeferReason)
        /// A claim for the trigger was cut short by its rate limit.
        case rateLimited(trigger: TriggerRef)
    }

    /// A delivery thread's next step.
    public struct DeliveryTurn {
        public var start: [Job] = []
        /// Jobs whose start deadline passed while queued: never sent; the event is simply due
        /// again when its lease ends.
        public var dropped: [Job] = []
        /// Sources whose claimers waited for room and now have some.
        public var wakeClaimers: Set<String> = []

        public var wakeClaimer: Bool { !wakeClaimers.isEmpty }
    }

    /// A transfer slot given back: the job's host and source.
    public struct Slot: Sendable, Equatable {
        public var hostKey: String
        public var source: String

        public init(hostKey: String, source: String = SourceConfig.defaultName) {
            self.hostKey = hostKey
            self.source = source
        }
    }

    private struct HostState {
        var queue: [Job] = []
        var head = 0
        var inFlight = 0
        /// How many jobs may wait for this host beyond the ones running (see `prefetch`).
        var prefetch: Int
        var triggers: [TriggerRef]

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

    /// One source's claim state: its claimer asks for it alone.
    private struct SourceState {
        var triggers: [TriggerRef] = []
        /// Triggers that may have due events: all of them after a NOTIFY or a poll tick; a
        /// trigger leaves the set when a claim returned fewer of its events than asked for.
        var mayHaveDue: Set<TriggerRef> = []
        var nextPoll: ContinuousClock.Instant
        /// True while the claimer sleeps because there is no room; cleared when it is woken.
        var waitsForRoom = false
        /// Jobs queued or in flight.
        var held = 0
        var recorderBacklog = 0
        /// Rotates which trigger goes first, so none is favoured when room is short.
        var rotation = 0
    }

    public let limits: Limits
    private var hosts: [String: HostState] = [:]
    private var hostOrder: [String]
    private let routes: [TriggerRef: FlowRoute]
    private let triggerOrder: [TriggerRef]
    private var sources: [String: SourceState] = [:]
    private let sourceOrder: [String]
    public private(set) var queuedTotal = 0
    public private(set) var inFlightTotal = 0
    public private(set) var isStopping = false
    private var earliestDeadline: ContinuousClock.Instant?
    /// Rotates which host goes first when starting jobs.
    private var rotation = 0
    private var gates: [TriggerRef: TriggerGate] = [:]
    /// Waiting to be taken by ``takeNotices()``.
    private var notices: [Notice] = []

    public init(limits: Limits, routes: [FlowRoute], now: ContinuousClock.Instant) {
        self.limits = limits
        var byTrigger: [TriggerRef: FlowRoute] = [:]
        var hosts: [String: HostState] = [:]
        let perHost = min(limits.perHostLimit, limits.poolSize)
        for route in routes {
            byTrigger[route.ref] = route
            let prefetch = Self.prefetch(perHost: perHost, limits: limits, timeout: route.timeout)
            if var host = hosts[route.hostKey] {
                host.prefetch = min(host.prefetch, prefetch)
                host.triggers.append(route.ref)
                hosts[route.hostKey] = host
            } else {
                hosts[route.hostKey] = HostState(prefetch: prefetch, triggers: [route.ref])
            }
        }
        self.routes = byTrigger
        self.hosts = hosts
        gates = byTrigger.mapValues { TriggerGate(protection: $0.protection, now: now) }
        hostOrder = hosts.keys.sorted()
        triggerOrder = byTrigger.keys.sorted()
        var sources: [String: SourceState] = [:]
        for trigger in triggerOrder {
            sources[trigger.source, default: SourceState(nextPoll: now)].triggers.append(trigger)
        }
        for (name, state) in sources { sources[name]?.mayHaveDue = Set(state.triggers) }
        self.sources = sources
        sourceOrder = sources.keys.sorted()
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

    // MARK: Claimers

    /// What a source's claimer does next. A claim is planned only while the source's
    /// recorder keeps up, the source has room under the fair share (``sourceRoom(_:)``), and
    /// some trigger of the source that may have due events has a host that is short of
    /// queued work (below half its prefetch) with room for more. A host that is saturated is
    /// left out, so it never blocks claims for the others.
    public mutating func planClaim(source: String = SourceConfig.defaultName, now: ContinuousClock.Instant)
        -> ClaimPlan
    {
        if isStopping { return .stop }
        guard var state = sources[source] else { return .wait(until: now + limits.pollInterval) }
        if now >= state.nextPoll {
            // The poll keeps its own cadence: claims for busy triggers do not postpone it,
            // or a quiet trigger's retries would never be looked for.
            state.mayHaveDue = Set(state.triggers)
            state.nextPoll = now + limits.pollInterval
        }
        sources[source] = state
        for trigger in state.triggers {
            if let transition = gates[trigger]?.breaker?.advance(now: now) {
                notices.append(.circuit(trigger: trigger, transition))
            }
        }
        let limitsByTrigger = claimLimits(source: source, now: now)
        if limitsByTrigger.isEmpty {
            // Blocked by room only if some trigger with due events is not held back by its
            // own gate; those are woken by a transition, the gates by the clock.
            var blockedByRoom = false
            for trigger in state.mayHaveDue where gateAllowance(for: trigger, now: now) != 0 {
                blockedByRoom = true
                break
            }
            sources[source]?.waitsForRoom = blockedByRoom
            let nextPoll = state.nextPoll
            return .wait(until: blockedByRoom ? nil : min(nextPoll, nextGateChange(source: source, now: now) ?? nextPoll))
        }
        sources[source]?.waitsForRoom = false
        let step = rotationStep(served: limitsByTrigger, state: state)
        sources[source]?.rotation &+= step
        return .claim(limitsByTrigger)
    }

    /// What a trigger's gate allows now: nil for no limit, else that many events.
    private mutating func gateAllowance(for trigger: TriggerRef, now: ContinuousClock.Instant) -> Int? {
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

    /// The earliest instant a gate that now holds a trigger of the source back may let it through.
    private func nextGateChange(source: String, now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        var earliest: ContinuousClock.Instant?
        for trigger in sources[source]?.mayHaveDue ?? [] {
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
    /// Returns whether delivery threads should be woken. A source that stops wanting room
    /// may leave room to others: see ``takeClaimerWakes(now:)``.
    public mutating func claimed(
        _ jobs: [Job], limits asked: [String: Int], source: String = SourceConfig.defaultName
    ) -> Bool {
        var counts: [String: Int] = [:]
        for job in jobs {
            counts[job.triggerName, default: 0] += 1
            if hosts[job.hostKey] == nil {
                // A host no route named (not expected): queue it with the smallest prefetch.
                hosts[job.hostKey] = HostState(prefetch: 1, triggers: [])
                hostOrder.append(job.hostKey)
            }
            hosts[job.hostKey]?.queue.append(job)
            sources[job.sourceName]?.held += 1
            if earliestDeadline.map({ job.startDeadline < $0 }) ?? true { earliestDeadline = job.startDeadline }
        }
        queuedTotal += jobs.count
        for (name, limit) in asked {
            let trigger = TriggerRef(source: source, name: name)
            let count = counts[name, default: 0]
            if count < limit { sources[source]?.mayHaveDue.remove(trigger) }
            gates[trigger]?.bucket?.take(count)
            gates[trigger]?.breaker?.claimed(count)
        }
        return !jobs.isEmpty
    }

    /// A NOTIFY arrived on the source's connection: any of its triggers may have new events.
    public mutating func notified(source: String = SourceConfig.defaultName) {
        guard var state = sources[source] else { return }
        state.mayHaveDue = Set(state.triggers)
        sources[source] = state
    }

    /// Whether the source has due work that it could claim (a disabled trigger wants nothing).
    private func wantsRoom(_ state: SourceState) -> Bool {
        state.recorderBacklog < limits.recorderBacklogLimit
            && state.mayHaveDue.contains { gates[$0]?.disabled != true }
    }

    /// The fair share: how many more jobs `source` may take now. Every source that holds jobs
    /// or has due events counts as active, and each active source's share is the capacity
    /// (pool plus two batches) divided among them. A source may always fill up to its share
    /// (while free capacity lasts), and beyond it only what is left after reserving, for every
    /// other source with due events below its share, the rest of that share. So a flooded
    /// source takes all the capacity an idle one leaves, yet when the quiet one has events it
    /// gets its share as soon as jobs finish: free room goes to it first.
    /// With one source this is simply the free capacity.
    func sourceRoom(_ source: String) -> Int {
        guard let own = sources[source] else { return 0 }
        let free = limits.capacity - inFlightTotal - queuedTotal
        var active = 0
        for name in sourceOrder {
            guard let state = sources[name] else { continue }
            if name == source || state.held > 0 || wantsRoom(state) { active += 1 }
        }
        let share = (limits.capacity + active - 1) / max(1, active)
        var reserve = 0
        for name in sourceOrder where name != source {
            guard let state = sources[name], wantsRoom(state), state.held < share else { continue }
            reserve += share - state.held
        }
        return max(min(free, share - own.held), free - reserve)
    }

    /// How far the next plan's starting trigger moves: past the last trigger this plan
    /// served, so that consecutive claims over many triggers with one due event each (a
    /// thousand cron ticks at once) ask for disjoint triggers instead of re-asking the ones
    /// just claimed; by one when that would come back round to the same start, so that with
    /// few triggers the first place still alternates.
    private func rotationStep(served: [String: Int], state: SourceState) -> Int {
        let count = state.triggers.count
        guard count > 1 else { return 1 }
        var last = 0
        for offset in 0..<count where served[state.triggers[(offset + state.rotation) % count].name] != nil {
            last = offset
        }
        let step = last + 1
        return step % count == 0 ? 1 : step
    }

    /// Per-trigger claim sizes for a source: each eligible host's room split over its
    /// triggers, then the source's room (one batch at most) shared out so that no trigger
    /// takes another's part.
    private mutating func claimLimits(source: String, now: ContinuousClock.Instant) -> [String: Int] {
        guard let state = sources[source], state.recorderBacklog < limits.recorderBacklogLimit else { return [:] }
        let room = min(limits.fetchBatchSize, sourceRoom(source))
        guard room > 0 else { return [:] }
        var caps: [(trigger: String, cap: Int)] = []
        // How many triggers that may have due events share each host, counted once per host
        // rather than once per trigger: with a thousand triggers on one host (cron triggers
        // calling one service) the per-trigger count made every plan quadratic.
        var sharingByHost: [String: Int] = [:]
        let triggerCount = state.triggers.count
        for offset in 0..<triggerCount {
            let trigger = state.triggers[(offset + state.rotation) % triggerCount]
            guard state.mayHaveDue.contains(trigger), let route = routes[trigger], let host = hosts[route.hostKey] else {
                continue
            }
            let hostRoom = perHostLimit + host.prefetch - host.inFlight - host.queued
            let hungry = host.queued < max(1, host.prefetch / 2)
            guard hungry, hostRoom > 0 else { continue }
            let sharing: Int
            if let counted = sharingByHost[route.hostKey] {
                sharing = counted
            } else {
                sharing = host.triggers.filter { sources[$0.source]?.mayHaveDue.contains($0) ?? false }.count
                sharingByHost[route.hostKey] = sharing
            }
            var cap = (hostRoom + sharing - 1) / max(1, sharing)
            if let allowance = gateAllowance(for: trigger, now: now) {
                if allowance < cap, gates[trigger]?.bucket != nil { notices.append(.rateLimited(trigger: trigger)) }
                cap = min(cap, allowance)
            }
            if cap > 0 { caps.append((trigger.name, cap)) }
        }
        return Self.share(room, among: caps)
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
                    // Mutated in place: a copy of the host taken out of the dictionary would
                    // share its queue, so popping from it would copy the whole queue per job.
                    guard hosts[key].map({ $0.queued > 0 && $0.inFlight < perHostLimit }) == true,
                        let job = hosts[key]?.popFirst()
                    else { continue }
                    turn.start.append(job)
                    hosts[key]?.inFlight += 1
                    budget -= 1
                    progressed = true
                }
            }
            queuedTotal -= turn.start.count
            inFlightTotal += turn.start.count
            if turn.start.count > 0 { rotation &+= 1 }
        }
        if !turn.start.isEmpty || !turn.dropped.isEmpty { turn.wakeClaimers = takeClaimerWakes(now: now) }
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
        forget(dropped)
        earliestDeadline = earliest
        for job in dropped { gates[job.triggerRef]?.breaker?.probeAbandoned() }
        return dropped
    }

    /// Queued jobs removed unsent.
    private mutating func forget(_ jobs: [Job]) {
        queuedTotal -= jobs.count
        for job in jobs { sources[job.sourceName]?.held -= 1 }
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
    /// their sources' recorders. Returns the sources whose claimers should be woken.
    public mutating func finished(_ slots: [Slot], now: ContinuousClock.Instant) -> Set<String> {
        release(slots)
        for slot in slots { sources[slot.source]?.recorderBacklog += 1 }
        return takeClaimerWakes(now: now)
    }

    /// ``finished(_:now:)`` for a worker with the default source only.
    public mutating func finished(hostKeys: [String], now: ContinuousClock.Instant) -> Bool {
        !finished(hostKeys.map { Slot(hostKey: $0) }, now: now).isEmpty
    }

    /// Transfers abandoned at shutdown: their slots are free, no outcome follows.
    public mutating func aborted(_ slots: [Slot]) {
        release(slots)
    }

    private mutating func release(_ slots: [Slot]) {
        for slot in slots {
            hosts[slot.hostKey]?.inFlight -= 1
            sources[slot.source]?.held -= 1
        }
        inFlightTotal -= slots.count
    }

    // MARK: Recorders

    /// Outcomes of the source were written (or dropped as unwritable). Returns whether to
    /// wake the source's claimer.
    public mutating func recorded(
        _ count: Int, source: String = SourceConfig.defaultName, now: ContinuousClock.Instant
    ) -> Bool {
        guard let state = sources[source] else { return false }
        sources[source]?.recorderBacklog = max(0, state.recorderBacklog - count)
        // Only this source's own backlog shrank: no other source gains room from it.
        guard state.waitsForRoom, !isStopping, wouldClaim(source: source, now: now) else { return false }
        sources[source]?.waitsForRoom = false
        return true
    }

    /// Heads of keyed events finished (delivered or failed): the events waiting behind them
    /// are due now. Their triggers may have due events again; returns whether the source's
    /// claimer should be woken to claim them, with no poll delay.
    public mutating func keysReleased(
        triggers: Set<String>, source: String = SourceConfig.defaultName, now: ContinuousClock.Instant
    ) -> Bool {
        guard !isStopping else { return false }
        let known = triggers.map { TriggerRef(source: source, name: $0) }.filter { routes[$0] != nil }
        guard !known.isEmpty else { return false }
        sources[source]?.mayHaveDue.formUnion(known)
        guard wouldClaim(source: source, now: now) else { return false }
        sources[source]?.waitsForRoom = false
        return true
    }

    /// A dry run of the source's claim: reports nothing.
    private mutating func wouldClaim(source: String, now: ContinuousClock.Instant) -> Bool {
        let noticesBefore = notices.count
        let result = !claimLimits(source: source, now: now).isEmpty
        notices.removeSubrange(noticesBefore...)
        return result
    }

    /// Level-based: the sources whose claimers sleep for lack of room and now have some
    /// (each reported once).
    public mutating func takeClaimerWakes(now: ContinuousClock.Instant) -> Set<String> {
        guard !isStopping else { return [] }
        var woken: Set<String> = []
        for name in sourceOrder where sources[name]?.waitsForRoom == true && wouldClaim(source: name, now: now) {
            sources[name]?.waitsForRoom = false
            woken.insert(name)
        }
        return woken
    }

    // MARK: Trigger gates

    /// Counts one finished attempt for the trigger's breaker and `disable_after`.
    /// `breakerFailure` is nil when the outcome says nothing about the receiver's health.
    public mutating func recordOutcome(
        trigger: TriggerRef, succeeded: Bool, breakerFailure: Bool?, now: ContinuousClock.Instant
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
    public mutating func disable(_ trigger: TriggerRef, reason: String) {
        guard gates[trigger]?.disabled == false else { return }
        gates[trigger]?.disabled = true
        notices.append(.disabled(trigger: trigger, reason: reason))
        dropQueued(of: trigger, reason: .disabled)
    }

    /// The disabled triggers of a source as stored in its database (every worker honours
    /// them). Returns whether a trigger was enabled again (the claimer should look for its events).
    @discardableResult
    public mutating func setDisabled(_ disabled: Set<String>, source: String = SourceConfig.defaultName) -> Bool {
        var enabledAgain = false
        for trigger in sources[source]?.triggers ?? [] {
            let shouldBeDisabled = disabled.contains(trigger.name)
            guard gates[trigger]?.disabled != shouldBeDisabled else { continue }
            gates[trigger]?.disabled = shouldBeDisabled
            if shouldBeDisabled {
                dropQueued(of: trigger, reason: .disabled)
            } else {
                gates[trigger]?.failingSince = nil
                sources[source]?.mayHaveDue.insert(trigger)
                enabledAgain = true
            }
        }
        return enabledAgain
    }

    public func isDisabled(_ trigger: TriggerRef) -> Bool { gates[trigger]?.disabled ?? false }

    /// Every routed trigger, in a stable order.
    public var triggers: [TriggerRef] { triggerOrder }

    /// The sources, in a stable order.
    public var sourceNames: [String] { sourceOrder }

    public func circuitState(_ trigger: TriggerRef) -> CircuitBreaker.State? { gates[trigger]?.breaker?.state }

    /// Shared rate limits of the source whose local tokens ran out while their trigger may
    /// have due events: how many tokens to ask its database for (a block of about a quarter
    /// second's worth), by trigger name.
    public func tokenRequests(source: String = SourceConfig.defaultName, now: ContinuousClock.Instant) -> [String: Int] {
        var requests: [String: Int] = [:]
        for trigger in sources[source]?.mayHaveDue ?? [] {
            guard let gate = gates[trigger], gate.isShared, !gate.disabled, let bucket = gate.bucket,
                bucket.tokens < 1, gate.breaker?.claimAllowance() != 0
            else { continue }
            if let next = gate.nextGrantRequest, now < next { continue }
            requests[trigger.name] = max(1, min(Int(bucket.burst), Int((bucket.rate / 4).rounded(.up))))
        }
        return requests
    }

    /// The database granted `count` tokens of a shared limit; none means ask again after one
    /// token's time.
    public mutating func granted(_ count: Int, to trigger: TriggerRef, now: ContinuousClock.Instant) {
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
    private mutating func dropQueued(of trigger: TriggerRef, reason: DeferReason) {
        guard let route = routes[trigger], var host = hosts[route.hostKey], host.queued > 0 else { return }
        var kept: [Job] = []
        var dropped: [Job] = []
        for job in host.queue[host.head...] {
            if job.triggerRef == trigger { dropped.append(job) } else { kept.append(job) }
        }
        host.queue = kept
        host.head = 0
        hosts[route.hostKey] = host
        forget(dropped)
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
        forget(dropped)
        earliestDeadline = nil
        return dropped
    }

    /// Finished outcomes not yet written, over all sources.
    public var recorderBacklog: Int { sources.values.reduce(0) { $0 + $1.recorderBacklog } }

    /// Jobs queued or in flight for a source, for tests and stats.
    public func held(source: String) -> Int { sources[source]?.held ?? 0 }

    /// Queued jobs for one host, for tests and stats.
    public func queued(host: String) -> Int { hosts[host]?.queued ?? 0 }

    /// Running transfers to one host.
    public func inFlight(host: String) -> Int { hosts[host]?.inFlight ?? 0 }
}
