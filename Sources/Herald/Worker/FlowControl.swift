import Algorithms

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
    /// Events one request carries at most: a batched trigger's `max_events`, else 1. Host
    /// slots and queues count requests; claims, rate limits and due counts count events.
    public var eventsPerRequest: Int
    /// The trigger whose gate (breaker, rate limit, disabled state) this one uses: a Citus
    /// worker node's trigger uses its coordinator's.
    public var sharesGateOf: TriggerRef?

    public init(
        trigger: String, source: String = SourceConfig.defaultName, hostKey: String, timeout: Duration,
        protection: TriggerProtection = TriggerProtection(), eventsPerRequest: Int = 1
    ) {
        self.eventsPerRequest = max(1, eventsPerRequest)
        self.trigger = trigger
        self.source = source
        self.hostKey = hostKey
        self.timeout = timeout
        self.protection = protection
    }

    var ref: TriggerRef { TriggerRef(source: source, name: trigger) }
}

/// Why queued jobs were given back unsent, or a trigger held back.
public enum FlowDeferReason: String, Sendable, Equatable {
    case rateLimit = "rate_limit"
    case circuitOpen = "circuit_open"
    case disabled
}

/// The worker's flow control: one value-type state machine, no I/O, no clock of its own
/// (every call that depends on time takes `now`). It is composed of two sub-machines and the
/// claim planning that joins them:
///
/// - ``HostQueues``: queued and in-flight jobs per host and in total, start deadlines — what
///   the delivery threads act on;
/// - ``TriggerGates``: rate limits, circuit breakers, disabled triggers — what holds a
///   trigger back; its changes return the actions they call for;
/// - per source: the triggers that may have due events, the jobs it holds, its recorder
///   backlog and its fair share of the pool.
///
/// It answers the claimers', delivery threads' and recorders' questions:
/// - ``planClaim(source:now:)``: claim how many events of a source, for which triggers, or
///   wait (and until when).
/// - ``takeStartable(freeSlots:now:)``: which queued jobs start now, which lost their lease.
/// - ``finished(_:now:)``, ``recorded(_:source:now:)``: bookkeeping that may free room.
///
/// Every call returns what the caller must act on (notices to log, count and persist;
/// claimers to wake); nothing waits in an outbox. Whether a sleeping claimer would claim is
/// asked of the same pure function the plan uses, so a dry run cannot change state.
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

    public typealias DeferReason = FlowDeferReason

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

    /// The disabled state of a source's triggers changed (``setDisabled(_:source:)``).
    public struct DisabledChange {
        public var enabled: [String] = []
        public var disabled: [String] = []
        public var notices: [Notice] = []
    }

    /// A transfer slot given back: the job's host and source.
    public struct Slot: Sendable, Equatable {
        public var hostKey: String
        public var source: String
        /// The outcomes the request leaves for the recorder: one per event it carried.
        public var outcomes: Int

        public init(hostKey: String, source: String = SourceConfig.defaultName, outcomes: Int = 1) {
            self.hostKey = hostKey
            self.source = source
            self.outcomes = outcomes
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

    /// Changes a source's state where it is stored. Not `sources[name]?.…`: the dictionary's
    /// optional-yielding accessor allocated its frame on the heap for a value this size, once
    /// per change, several times per claim.
    @discardableResult
    private mutating func withSource<Result>(_ name: String, _ change: (inout SourceState) -> Result) -> Result? {
        guard let index = sources.index(forKey: name) else { return nil }
        return change(&sources.values[index])
    }

    /// Per-trigger claim sizes, and the triggers whose share their rate limit cut short.
    private struct ClaimLimits {
        var byTrigger: [String: Int] = [:]
        var rateLimited: [TriggerRef] = []
    }

    public let limits: Limits
    private var queues: HostQueues<Job>
    private var gates: TriggerGates
    private var routes: [TriggerRef: FlowRoute]
    private var triggerOrder: [TriggerRef]
    private var sources: [String: SourceState] = [:]
    private var sourceOrder: [String]
    public private(set) var isStopping = false

    public init(limits: Limits, routes: [FlowRoute], now: ContinuousClock.Instant) {
        self.limits = limits
        var byTrigger: [TriggerRef: FlowRoute] = [:]
        for route in routes { byTrigger[route.ref] = route }
        let perHost = min(limits.perHostLimit, limits.poolSize)
        queues = HostQueues(routes: routes, poolSize: limits.poolSize, perHostLimit: limits.perHostLimit) {
            Self.prefetch(perHost: perHost, limits: limits, timeout: $0.timeout)
        }
        self.routes = byTrigger
        gates = TriggerGates(routes: byTrigger, now: now)
        triggerOrder = byTrigger.keys.sorted()
        var sources: [String: SourceState] = [:]
        for trigger in triggerOrder {
            sources[trigger.source, default: SourceState(nextPoll: now)].triggers.append(trigger)
        }
        for (name, state) in sources { sources[name]?.mayHaveDue = Set(state.triggers) }
        self.sources = sources
        sourceOrder = sources.keys.sorted()
    }

    /// A source found while running (a Citus worker node added to the cluster): its triggers
    /// join the hosts' queues and the gates, and it shares the pool fairly from its first
    /// claim, which is due at once. Routes already known are left as they are.
    public mutating func addSource(routes added: [FlowRoute], now: ContinuousClock.Instant) {
        let fresh = added.filter { routes[$0.ref] == nil }
        guard !fresh.isEmpty else { return }
        let byTrigger = Dictionary(fresh.map { ($0.ref, $0) }, uniquingKeysWith: { first, _ in first })
        routes.merge(byTrigger) { old, _ in old }
        let perHost = min(limits.perHostLimit, limits.poolSize)
        queues.add(fresh) { [limits] in Self.prefetch(perHost: perHost, limits: limits, timeout: $0.timeout) }
        gates.add(byTrigger, now: now)
        triggerOrder = routes.keys.sorted()
        for trigger in byTrigger.keys.sorted() {
            sources[trigger.source, default: SourceState(nextPoll: now)].triggers.append(trigger)
            withSource(trigger.source) { $0.mayHaveDue.insert(trigger) }
        }
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

    public var queuedTotal: Int { queues.queuedTotal }
    public var inFlightTotal: Int { queues.inFlightTotal }

    // MARK: Claimers

    /// What a source's claimer does next, and what to report. A claim is planned only while
    /// the source's recorder keeps up, the source has room under the fair share
    /// (``sourceRoom(_:)``), and some trigger of the source that may have due events has a
    /// host that is short of queued work (below half its prefetch) with room for more. A
    /// host that is saturated is left out, so it never blocks claims for the others.
    public mutating func planClaim(source: String = SourceConfig.defaultName, now: ContinuousClock.Instant)
        -> (plan: ClaimPlan, notices: [Notice])
    {
        if isStopping { return (.stop, []) }
        guard let polled = sources[source] else { return (.wait(until: now + limits.pollInterval), []) }
        if now >= polled.nextPoll {
            // The poll keeps its own cadence: claims for busy triggers do not postpone it,
            // or a quiet trigger's retries would never be looked for.
            let nextPoll = now + limits.pollInterval
            withSource(source) { state in
                state.mayHaveDue = Set(polled.triggers)
                state.nextPoll = nextPoll
            }
        }
        gates.releaseReservations(of: polled.triggers)
        var notices = perform(gates.advance(polled.triggers, now: now))
        let planned = claimLimits(source: source, now: now)
        notices += planned.rateLimited.map { .rateLimited(trigger: $0) }
        // Read after the gates' actions, which may have changed what the source holds.
        guard let state = sources[source] else { return (.wait(until: now + limits.pollInterval), notices) }
        if planned.byTrigger.isEmpty {
            // Blocked by room only if some trigger with due events is not held back by its
            // own gate; those are woken by a transition, the gates by the clock.
            let waitsForRoom = state.mayHaveDue.contains { gates.allowance(for: $0, now: now) != 0 }
            withSource(source) { $0.waitsForRoom = waitsForRoom }
            let until = waitsForRoom ? nil : min(state.nextPoll, gates.nextChange(of: state.mayHaveDue, now: now) ?? state.nextPoll)
            return (.wait(until: until), notices)
        }
        withSource(source) { $0.waitsForRoom = false }
        for (name, limit) in planned.byTrigger { gates.reserve(limit, of: TriggerRef(source: source, name: name)) }
        let step = rotationStep(served: planned.byTrigger, state: state)
        withSource(source) { $0.rotation &+= step }
        return (.claim(planned.byTrigger), notices)
    }

    /// A planned claim failed (its query, or the connection): what it reserved of shared
    /// gates is given back at once, for the source may not plan again for a while (its
    /// database is down) and the other nodes share those tokens and that probe.
    public mutating func claimFailed(source: String) {
        gates.releaseReservations(of: sources[source]?.triggers ?? [])
    }

    /// Records a claim's result: its jobs join their hosts' queues, and a trigger that got
    /// fewer events than asked for has nothing more due until the next NOTIFY or poll.
    /// Returns whether delivery threads should be woken. A source that stops wanting room
    /// may leave room to others: see ``takeClaimerWakes(now:)``.
    /// `events` counts what the claim returned per trigger when that differs from the jobs
    /// made of it (a batched trigger's events become fewer requests, or wait to fill one).
    public mutating func claimed(
        _ jobs: [Job], events: [String: Int]? = nil, limits asked: [String: Int], source: String = SourceConfig.defaultName
    ) -> Bool {
        var jobCounts: [String: Int] = [:]
        // A claim's jobs come in runs of one trigger (so one host and one source): each run
        // is one update of the counts, the host's queue and the source, not one per job.
        let runs = jobs.chunked { $0.triggerName == $1.triggerName && $0.hostKey == $1.hostKey && $0.sourceName == $1.sourceName }
        for run in runs {
            let first = run[run.startIndex]
            jobCounts[first.triggerName, default: 0] += run.count
            queues.enqueue(run)
            withSource(first.sourceName) { $0.held += run.count }
        }
        let counts = events ?? jobCounts
        for (name, limit) in asked {
            let trigger = TriggerRef(source: source, name: name)
            let count = counts[name, default: 0]
            if count < limit { withSource(source) { $0.mayHaveDue.remove(trigger) } }
            gates.claimed(count, of: trigger)
        }
        return !jobs.isEmpty
    }

    /// A NOTIFY arrived on the source's connection: any of its triggers may have new events.
    /// With `only`, just those triggers may have new events (a look while writers are
    /// silent: the capturing triggers).
    public mutating func notified(source: String = SourceConfig.defaultName, only triggers: Set<String>? = nil) {
        withSource(source) { state in
            if let triggers {
                state.mayHaveDue.formUnion(state.triggers.filter { triggers.contains($0.name) })
            } else {
                state.mayHaveDue = Set(state.triggers)
            }
        }
    }

    /// Whether the source has due work that it could claim (a disabled trigger wants nothing).
    private func wantsRoom(_ state: SourceState) -> Bool {
        state.recorderBacklog < limits.recorderBacklogLimit
            && state.mayHaveDue.contains { !gates.isDisabled($0) }
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
        let free = limits.capacity - queues.inFlightTotal - queues.queuedTotal
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
    /// takes another's part. Pure: the plan and the "would it claim?" question both ask it.
    private func claimLimits(source: String, now: ContinuousClock.Instant) -> ClaimLimits {
        var result = ClaimLimits()
        guard let state = sources[source], state.recorderBacklog < limits.recorderBacklogLimit else { return result }
        let room = min(limits.fetchBatchSize, sourceRoom(source))
        guard room > 0 else { return result }
        var caps: [(trigger: String, cap: Int)] = []
        var perRequestByTrigger: [String: Int] = [:]
        var eventCaps: [String: Int] = [:]
        // How many triggers that may have due events share each host, counted once per host
        // rather than once per trigger: with a thousand triggers on one host (cron triggers
        // calling one service) the per-trigger count made every plan quadratic.
        var sharingByHost: [String: Int] = [:]
        let triggerCount = state.triggers.count
        for offset in 0..<triggerCount {
            let trigger = state.triggers[(offset + state.rotation) % triggerCount]
            guard state.mayHaveDue.contains(trigger), let route = routes[trigger],
                let host = queues.room(host: route.hostKey), host.hungry, host.free > 0
            else { continue }
            let sharing: Int
            if let counted = sharingByHost[route.hostKey] {
                sharing = counted
            } else {
                sharing = host.triggers.filter { sources[$0.source]?.mayHaveDue.contains($0) ?? false }.count
                sharingByHost[route.hostKey] = sharing
            }
            // In requests; a batched trigger's allowance (events) is rounded up to requests.
            let perRequest = route.eventsPerRequest
            var cap = (host.free + sharing - 1) / max(1, sharing)
            if let allowance = gates.allowance(for: trigger, now: now) {
                let requests = (allowance + perRequest - 1) / perRequest
                if requests < cap, gates.hasRateLimit(trigger) { result.rateLimited.append(trigger) }
                cap = min(cap, requests)
                if perRequest > 1 { eventCaps[trigger.name] = allowance }
            }
            if cap > 0 { caps.append((trigger.name, cap)) }
            if perRequest > 1 { perRequestByTrigger[trigger.name] = perRequest }
        }
        // The shares are requests; a batched trigger claims as many events as they carry.
        result.byTrigger = Self.share(room, among: caps)
        for (name, perRequest) in perRequestByTrigger {
            guard let requests = result.byTrigger[name] else { continue }
            result.byTrigger[name] = min(requests * perRequest, eventCaps[name] ?? .max)
        }
        return result
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

    /// Whether the source's claimer, asked now, would claim.
    private func wouldClaim(source: String, now: ContinuousClock.Instant) -> Bool {
        !claimLimits(source: source, now: now).byTrigger.isEmpty
    }

    /// Level-based: the sources whose claimers sleep for lack of room and now have some
    /// (each reported once).
    public mutating func takeClaimerWakes(now: ContinuousClock.Instant) -> Set<String> {
        guard !isStopping else { return [] }
        var woken: Set<String> = []
        for name in sourceOrder where sources[name]?.waitsForRoom == true && wouldClaim(source: name, now: now) {
            withSource(name) { $0.waitsForRoom = false }
            woken.insert(name)
        }
        return woken
    }

    // MARK: Delivery threads

    /// Jobs a delivery thread with `freeSlots` free transfer slots starts now, round-robin
    /// over hosts within the pool and per-host limits, after dropping every queued job whose
    /// start deadline has passed.
    public mutating func takeStartable(freeSlots: Int, now: ContinuousClock.Instant) -> DeliveryTurn {
        var turn = DeliveryTurn()
        turn.dropped = queues.removeExpired(now: now)
        forget(turn.dropped)
        for job in turn.dropped { gates.probeAbandoned(job.triggerRef) }
        if !isStopping { turn.start = queues.start(budget: freeSlots) }
        if !turn.start.isEmpty || !turn.dropped.isEmpty { turn.wakeClaimers = takeClaimerWakes(now: now) }
        return turn
    }

    /// Queued jobs removed unsent: their sources hold them no more.
    private mutating func forget(_ jobs: [Job]) {
        for job in jobs { withSource(job.sourceName) { $0.held -= 1 } }
    }

    /// Whether a thread with `freeSlots` free slots could start a job now.
    public func hasStartable(freeSlots: Int) -> Bool {
        !isStopping && queues.hasStartable(freeSlots: freeSlots)
    }

    /// How long a delivery thread may sleep in `curl_multi_poll`: zero while it has a job to
    /// start, otherwise until the next queued job's start deadline, at most `maximum`.
    public func pollTimeout(freeSlots: Int, now: ContinuousClock.Instant, maximum: Duration = .seconds(1)) -> Duration {
        if hasStartable(freeSlots: freeSlots) { return .zero }
        guard let deadline = queues.earliestDeadline else { return maximum }
        return max(.milliseconds(1), min(maximum, deadline - now))
    }

    /// Transfers ended (with any outcome): their slots are free and their outcomes wait for
    /// their sources' recorders. Returns the sources whose claimers should be woken.
    public mutating func finished(_ slots: [Slot], now: ContinuousClock.Instant) -> Set<String> {
        release(slots, outcomes: true)
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

    /// Frees the slots; with `outcomes`, their outcomes join their sources' recorder backlog.
    /// A turn's slots come in runs of one host and source (a claim's jobs are grouped by
    /// trigger): each run is one update of its host and its source, not one per slot.
    private mutating func release(_ slots: [Slot], outcomes: Bool = false) {
        for run in slots.chunked(by: { $0.hostKey == $1.hostKey && $0.source == $1.source }) {
            let first = run[run.startIndex]
            let recorded = outcomes ? run.reduce(0) { $0 + $1.outcomes } : 0
            queues.release(host: first.hostKey, count: run.count)
            withSource(first.source) { state in
                state.held -= run.count
                state.recorderBacklog += recorded
            }
        }
    }

    // MARK: Recorders

    /// Outcomes of the source were written (or dropped as unwritable). Returns whether to
    /// wake the source's claimer.
    public mutating func recorded(
        _ count: Int, source: String = SourceConfig.defaultName, now: ContinuousClock.Instant
    ) -> Bool {
        guard let state = sources[source] else { return false }
        withSource(source) { $0.recorderBacklog = max(0, state.recorderBacklog - count) }
        // Only this source's own backlog shrank: no other source gains room from it.
        guard state.waitsForRoom, !isStopping, wouldClaim(source: source, now: now) else { return false }
        withSource(source) { $0.waitsForRoom = false }
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
        withSource(source) { $0.mayHaveDue.formUnion(known) }
        guard wouldClaim(source: source, now: now) else { return false }
        withSource(source) { $0.waitsForRoom = false }
        return true
    }

    // MARK: Trigger gates

    /// Counts one finished attempt for the trigger's breaker and `disable_after`.
    /// `breakerFailure` is nil when the outcome says nothing about the receiver's health.
    @discardableResult
    public mutating func recordOutcome(
        trigger: TriggerRef, succeeded: Bool, breakerFailure: Bool?, now: ContinuousClock.Instant
    ) -> [Notice] {
        perform(gates.recordOutcome(trigger, succeeded: succeeded, breakerFailure: breakerFailure, now: now))
    }

    /// Attempts of one trigger in the order they finished: the same as
    /// ``recordOutcome(trigger:succeeded:breakerFailure:now:)`` for each, with one lookup of
    /// the trigger's gate.
    public mutating func recordOutcomes(
        trigger: TriggerRef, attempts: [(succeeded: Bool, breakerFailure: Bool?)], now: ContinuousClock.Instant
    ) -> [Notice] {
        perform(gates.recordOutcomes(trigger, attempts, now: now))
    }

    /// Disables a trigger in this worker at once (a receiver said so, or `disable_after`):
    /// nothing more is claimed, queued jobs are given back unsent. The caller persists it.
    @discardableResult
    public mutating func disable(_ trigger: TriggerRef, reason: String) -> [Notice] {
        perform(gates.disable(trigger, reason: reason))
    }

    /// The disabled triggers of a source as stored in its database (every worker honours
    /// them). A trigger enabled again may have due events at once.
    @discardableResult
    public mutating func setDisabled(_ disabled: Set<String>, source: String = SourceConfig.defaultName)
        -> DisabledChange
    {
        var change = DisabledChange()
        for trigger in sources[source]?.triggers ?? [] {
            let shouldBeDisabled = disabled.contains(trigger.name)
            guard gates.setDisabled(trigger, shouldBeDisabled) else { continue }
            // Every trigger sharing the gate is held back or let go with it.
            let sharing = gates.members(of: trigger)
            if shouldBeDisabled {
                change.disabled.append(trigger.name)
                for member in sharing { change.notices += giveBackQueued(of: member, reason: .disabled) }
            } else {
                change.enabled.append(trigger.name)
                for member in sharing { withSource(member.source) { $0.mayHaveDue.insert(member) } }
            }
        }
        return change
    }

    /// Carries out the gates' actions on the queues and turns them into notices.
    private mutating func perform(_ actions: [TriggerGates.Action]) -> [Notice] {
        var notices: [Notice] = []
        for action in actions {
            // A gate's action concerns every trigger using it (each node's, on Citus): its
            // state is written to each one's database, and each one's queued jobs given back.
            switch action {
            case .circuit(let gate, let transition):
                notices += gates.members(of: gate).map { .circuit(trigger: $0, transition) }
            case .disabled(let gate, let reason):
                notices += gates.members(of: gate).map { .disabled(trigger: $0, reason: reason) }
            case .giveBackQueued(let gate, let reason):
                for trigger in gates.members(of: gate) { notices += giveBackQueued(of: trigger, reason: reason) }
            }
        }
        return notices
    }

    /// Gives back a trigger's queued jobs unsent (breaker opened, trigger disabled).
    private mutating func giveBackQueued(of trigger: TriggerRef, reason: DeferReason) -> [Notice] {
        guard let route = routes[trigger] else { return [] }
        let removed = queues.removeQueued(of: trigger, host: route.hostKey)
        forget(removed)
        return removed.isEmpty ? [] : [.release(removed, reason)]
    }

    public func isDisabled(_ trigger: TriggerRef) -> Bool { gates.isDisabled(trigger) }

    /// Every routed trigger, in a stable order.
    public var triggers: [TriggerRef] { triggerOrder }

    /// The sources, in a stable order.
    public var sourceNames: [String] { sourceOrder }

    public func circuitState(_ trigger: TriggerRef) -> CircuitBreaker.State? { gates.circuitState(trigger) }

    /// Shared rate limits of the source whose local tokens ran out while their trigger may
    /// have due events: how many tokens to ask its database for, by trigger name.
    public func tokenRequests(source: String = SourceConfig.defaultName, now: ContinuousClock.Instant) -> [String: Int] {
        gates.tokenRequests(of: sources[source]?.mayHaveDue ?? [], now: now)
    }

    /// The database granted `count` tokens of a shared limit.
    public mutating func granted(_ count: Int, to trigger: TriggerRef, now: ContinuousClock.Instant) {
        gates.granted(count, to: trigger, now: now)
    }

    // MARK: Shutdown

    /// Stops claiming and starting; returns the queued jobs, which are never sent.
    public mutating func beginStopping() -> [Job] {
        isStopping = true
        let dropped = queues.removeAll()
        forget(dropped)
        return dropped
    }

    /// Finished outcomes not yet written, over all sources.
    public var recorderBacklog: Int { sources.values.reduce(0) { $0 + $1.recorderBacklog } }

    /// Jobs queued or in flight for a source, for tests and stats.
    public func held(source: String) -> Int { sources[source]?.held ?? 0 }

    /// Queued jobs for one host, for tests and stats.
    public func queued(host: String) -> Int { queues.queued(host: host) }

    /// Running transfers to one host.
    public func inFlight(host: String) -> Int { queues.inFlight(host: host) }
}
