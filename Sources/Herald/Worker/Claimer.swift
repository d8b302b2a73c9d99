import Algorithms
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Claims due events of one source (database) and hands them to flow control, on a thread and
/// connection of its own; each source has its own claimer.
///
/// What to claim and when is ``FlowControl``'s decision; this loop executes it. Between
/// claims it sleeps in `poll` on its connection's socket (LISTEN herald_events) and flow
/// control's wake pipe: a capture NOTIFY, freed room or shutdown wakes it at once; with no
/// signal it polls every `fetch_interval_ms` (LISTEN does not survive pgbouncer in
/// transaction mode, and retries fall due silently). Writers notify only while the claimer
/// waits for them: ``WakeGate`` decides when it asks them to.
///
/// Errors are told apart: a lost connection reconnects with backoff; any other database
/// error (permissions, a read-only standby, a statement timeout) backs off on the same
/// connection. Either way the same error is logged once per interval, not once per turn.
public final class Claimer: Service {
    static let channel = "herald_events"

    private struct State {
        var stopping = false
        var connected = false
        var lastConnectionFailed = false
        var installation: EventIDKey?
        /// A Citus worker node's claimer: when it may next try to reach the coordinator.
        var nextCoordinatorAttempt = ContinuousClock.now
        /// Why the source cannot be worked on, while it cannot.
        var problem = "connecting"
    }

    private let state = Mutex(State())
    private let config: HeraldConfig
    private let workerID: String
    /// The source this claimer serves (its config is scoped to it).
    let source: String
    private let routes: [String: TriggerRoute]
    private let flow: FlowController
    private let stats: WorkerStats
    private let logger: Logger
    private let thread = Mutex<OwnedThread?>(nil)
    /// Told which triggers this worker saw enabled or disabled in the database.
    private let onTriggerStateChange: @Sendable (_ enabled: [String], _ disabled: [String]) -> Void
    /// Told what a late preflight (the database was down at start) found out of step.
    private let onDrift: @Sendable (TriggerDrift) -> Void
    /// Told of every capture NOTIFY heard (pull consumers' long polls wake on it).
    private let onNotification: @Sendable () -> Void
    /// True while something besides the claimer waits for this source's notifications (pull
    /// consumers, stream clients): the claimer then keeps writers notifying (``WakeGate``).
    private let notificationsShared: @Sendable () -> Bool
    /// When the loop last turned, connected or not, for the watchdog.
    let heartbeat = Heartbeat()

    /// `config` is scoped to one source; `logger` comes labelled with it (`source`) when
    /// the worker serves several. `installation` is nil while the source could not be
    /// checked at start: the claimer checks it when it connects.
    public init(
        config: HeraldConfig, workerID: String, installation: EventIDKey?, flow: FlowController, stats: WorkerStats,
        logger: Logger, onTriggerStateChange: @escaping @Sendable ([String], [String]) -> Void = { _, _ in },
        onDrift: @escaping @Sendable (TriggerDrift) -> Void = { _ in },
        onNotification: @escaping @Sendable () -> Void = {},
        notificationsShared: @escaping @Sendable () -> Bool = { false }
    ) {
        self.onNotification = onNotification
        self.notificationsShared = notificationsShared
        self.onTriggerStateChange = onTriggerStateChange
        self.onDrift = onDrift
        self.config = config
        self.workerID = workerID
        source = config.sources.first?.name ?? SourceConfig.defaultName
        state.withLock { $0.installation = installation }
        self.flow = flow
        self.stats = stats
        self.logger = logger
        var routes: [String: TriggerRoute] = [:]
        // Pull triggers are the consumers' to receive (ConsumerAPI), never the claimer's.
        for trigger in config.triggers where trigger.pullConsumer == nil {
            routes[trigger.name] = TriggerRoute(trigger: trigger, policy: RetryPolicy(trigger: trigger, worker: config.worker))
        }
        self.routes = routes
    }

    /// The routes flow control needs: each trigger's source, host and request timeout.
    static func routes(_ config: HeraldConfig) -> [FlowRoute] {
        config.sources.flatMap { source in
            source.triggers.filter { $0.pullConsumer == nil }.map {
                var route = FlowRoute(
                    trigger: $0.name, source: source.name, hostKey: DeliveryJob.hostKey($0.webhook),
                    timeout: .seconds($0.retry.timeoutSeconds), protection: $0.protection,
                    eventsPerRequest: $0.schedule == nil ? $0.batch?.maxEvents ?? 1 : 1)
                // A Citus worker node's trigger shares its coordinator's gate.
                route.sharesGateOf = source.citusNode.map { TriggerRef(source: $0.coordinatorSource, name: route.trigger) }
                return route
            }
        }
    }

    /// Claims until graceful shutdown; then stops claiming (in-flight work is the
    /// deliverer's to finish).
    public func run() async throws {
        thread.withLock { $0 = OwnedThread(name: "herald-claimer") { [self] in runLoop() } }
        try? await gracefulShutdown()
        await shutdown()
    }

    /// True while the claimer holds a live database connection.
    public var isConnected: Bool { state.withLock { $0.connected } }

    /// Why the source is not ready ("" while connected).
    var problem: String { state.withLock { $0.connected ? "" : $0.problem } }

    private func setConnected(_ connected: Bool, problem: String = "") {
        state.withLock {
            $0.connected = connected
            if !connected { $0.problem = problem }
        }
        stats.metrics.setSourceReady(source, connected)
    }

    func shutdown() async {
        state.withLock { $0.stopping = true }
        flow.wakeClaimer(source: source)
        await thread.withLock { $0 }?.join()
    }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    private func runLoop() {
        var connection: PGConnection?
        var reconnectBackoff = ReconnectBackoff()
        var queryBackoff = ReconnectBackoff()
        var throttle = ErrorLogThrottle()
        // Trigger state (enabled or not) is read every poll interval, at most once a second,
        // and at once when `herald enable-trigger` / `disable-trigger` notify.
        let stateInterval = max(Duration.milliseconds(config.worker.fetchIntervalMilliseconds), .seconds(1))
        var nextStateRefresh = ContinuousClock.now
        var keyCursors = KeyCursors()
        var batches = BatchAssembler<HeldEvent>()
        // A Citus worker node's claimer reserves shared rate-limit tokens on the coordinator.
        var coordinatorTokens: PGConnection?
        // On Citus, captures on shards never notify (two-phase commit refuses NOTIFY): a
        // worker node's claimer polls, and so does the coordinator's, where Citus local
        // tables are captured the same way.
        let citus = config.sources.first.map { $0.citusNode != nil || $0.citusCoordinator } ?? false
        var gate = WakeGate(
            mode: citus ? .polling(every: .milliseconds(config.worker.citusPollIntervalMilliseconds)) : .notified)
        // Triggers whose claims walk keys: the ordered ones, and any other found with keyed
        // pending events at the last state refresh.
        let pushed = config.triggers.filter { $0.pullConsumer == nil }
        let orderedTriggers = Set(pushed.filter { $0.ordering != nil }.map(\.name))
        let unorderedTriggers = pushed.filter { $0.ordering == nil }.map(\.name)
        let capturingTriggers = Set(config.triggers.filter(\.hasCaptureOperations).map(\.name))
        var keyedTriggers = orderedTriggers

        while !isStopping {
            heartbeat.beat()
            guard let open = connection ?? connect(&reconnectBackoff, &throttle),
                let installation = state.withLock({ $0.installation })
            else { continue }
            if connection == nil { gate.connected() }
            connection = open
            do {
                let store = EventStore(connection: open)
                try performDatabaseWork(store)
                if ContinuousClock.now >= nextStateRefresh {
                    refreshTriggerState(try store.disabledTriggers())
                    keyedTriggers = orderedTriggers.union(try store.triggersWithKeyedEvents(unorderedTriggers))
                    nextStateRefresh = .now + stateInterval
                }
                try reserveSharedTokens(store, coordinator: &coordinatorTokens, throttle: &throttle)
                try operate(gate.atTurn(mayDisarm: !notificationsShared(), now: .now), on: &gate, store, &throttle)
                if gate.takeActAsNotified(now: .now) {
                    // As a NOTIFY would: the claim looks at the capturing triggers, whose
                    // writers are silent while the gate is released, and long polls (pull
                    // consumers, stream readers) look again. The others' events (cron
                    // ticks, scheduled events, redeliveries) always come with a NOTIFY:
                    // they are looked at when one has arrived (libpq keeps what arrived
                    // during the claims), not every time, for a claim is shared among the
                    // triggers it asks and an idle one would take part of a busy one's.
                    let heard = try open.drainNotifications()
                    flow.notified(source: source, only: heard.isEmpty ? capturingTriggers : nil)
                    if heard.contains(where: { $0.payload == Self.stateChangedPayload }) { nextStateRefresh = .now }
                    onNotification()
                }
                sendDueBatches(&batches, installation: installation)
                switch flow.planClaim(source: source) {
                case .stop:
                    releaseHeld(&batches, store: store)
                    return
                case .claim(let limits):
                    let backlog = try claim(
                        limits, on: open, installation: installation, keyed: keyedTriggers, keyCursors: &keyCursors,
                        batches: &batches)
                    gate.claimed(backlog: backlog)
                    queryBackoff.reset()
                    reconnectBackoff.reset()
                    throttle.reset()
                case .wait(let until):
                    // Writers must be able to end a timed wait: arm first, and claim once
                    // more (the next turn) for what committed unnotified before the arm.
                    let arm = gate.beforeWait(untilWoken: until == nil, now: .now)
                    try operate(arm, on: &gate, store, &throttle)
                    if arm == .arm && gate.phase == .armed { continue }
                    // Every wait has a floor and a ceiling: no spin, and the loop turns at
                    // least once a second for the watchdog and the poll.
                    let wakeAt = [until, batches.nextDeadline, gate.wakeBy(untilWoken: until == nil)].compactMap { $0 }.min()
                    let timeout = wakeAt.map { $0 - ContinuousClock.now } ?? .seconds(1)
                    let clamped = min(max(timeout, .milliseconds(1)), .seconds(1))
                    let notifications = try open.waitForNotifications(
                        timeoutMilliseconds: Int32(clamped.milliseconds), wakeFD: flow.claimerWakeDescriptor(source: source))
                    flow.drainClaimerWakeups(source: source)
                    if !notifications.isEmpty {
                        flow.notified(source: source)
                        onNotification()
                    }
                    if notifications.contains(where: { $0.payload == Self.stateChangedPayload }) {
                        nextStateRefresh = .now
                    }
                }
            } catch where error.isConnectionProblem || !open.isOpen {
                flow.claimFailed(source: source)
                log(error, "claimer lost its database connection; reconnecting", throttle: &throttle)
                connection = nil
                setConnected(false, problem: "database unreachable")
                // Whatever was due may still be: look as soon as the connection is back.
                flow.notified(source: source)
            } catch {
                flow.claimFailed(source: source)
                let wait = queryBackoff.next()
                log(error, "claimer query failed; backing off", throttle: &throttle, retryIn: wait)
                pause(wait)
            }
        }
        if let connection { releaseHeld(&batches, store: EventStore(connection: connection)) }
    }

    /// The payload `herald enable-trigger` / `disable-trigger` send on ``channel``.
    static let stateChangedPayload = "trigger_state"

    /// Writes what flow control asked for: leases of unsent jobs given back, trigger state.
    /// On failure the writes go back to the queue for the next turn.
    private func performDatabaseWork(_ store: EventStore) throws(PGError) {
        let work = flow.takeDatabaseWork(source: source)
        guard !work.isEmpty else { return }
        do {
            try store.releaseUnsent(work.releases, workerID: workerID)
            for (trigger, reason) in work.disables {
                try store.setTriggerEnabled(trigger, enabled: false, reason: reason, by: "worker \(workerID)")
            }
            for (trigger, circuit) in work.circuits {
                try store.setCircuitState(trigger, state: circuit, workerID: workerID)
            }
        } catch {
            flow.restoreDatabaseWork(work, source: source)
            throw error
        }
    }

    /// Arms or disarms the wake gate, as it asked. A failure other than a lost connection
    /// never stops claims: it is logged, an arm counts as refused (retried with backoff, the
    /// claimer looking at every trigger meanwhile) and a release is tried again later.
    private func operate(
        _ action: WakeGate.Action, on gate: inout WakeGate, _ store: EventStore, _ throttle: inout ErrorLogThrottle
    ) throws(PGError) {
        do {
            switch action {
            case .none:
                return
            case .arm:
                let taken = try store.armWakeGate()
                gate.armed(taken, now: .now)
                logger.debug(taken ? "wake gate armed: writers notify" : "wake gate busy: a writer is committing; retrying")
            case .disarm:
                try store.disarmWakeGate()
                gate.disarmed()
                logger.debug("wake gate released: draining, writers do not notify")
            }
        } catch {
            if error.isConnectionProblem { throw error }
            if action == .arm { gate.armed(false, now: .now) } else { gate.disarmFailed() }
            log(error, "claimer could not \(action == .arm ? "take" : "release") the wake gate; claiming goes on", throttle: &throttle)
        }
    }

    private func refreshTriggerState(_ disabled: Set<String>) {
        let changes = flow.setDisabled(disabled.intersection(routes.keys), source: source)
        for trigger in changes.enabled {
            logger.info("trigger enabled; its pending events are delivered again", metadata: ["trigger": "\(trigger)"])
        }
        for trigger in changes.disabled {
            logger.warning("trigger disabled; its events stay pending until enabled", metadata: ["trigger": "\(trigger)"])
        }
        onTriggerStateChange(changes.enabled, changes.disabled)
    }

    /// Shared rate limits: reserve a block of tokens from PostgreSQL for each trigger whose
    /// local tokens ran out while it has due events.
    /// Shared rate limits: tokens come from a bucket row in PostgreSQL, so a limit holds
    /// across workers. On a Citus worker node the bucket is the coordinator's (a node's own
    /// would let each node send the whole rate): the claimer keeps a connection there, and
    /// while the coordinator cannot be reached it is granted nothing, as a worker whose
    /// database is down.
    private func reserveSharedTokens(
        _ store: EventStore, coordinator: inout PGConnection?, throttle: inout ErrorLogThrottle
    ) throws(PGError) {
        let requests = flow.tokenRequests(source: source)
        guard !requests.isEmpty else { return }
        var bucket = store
        let onCoordinator = config.sources.first?.citusCoordinatorDatabase != nil
        if let url = config.sources.first?.citusCoordinatorDatabase?.url {
            // After a failure, no new attempt for a while: a connection attempt to a host that
            // is down may take the connect timeout, and claiming must go on meanwhile.
            if coordinator?.isOpen != true {
                guard ContinuousClock.now >= state.withLock({ $0.nextCoordinatorAttempt }) else { return }
                do {
                    let opened = try PGConnection(url: url)
                    try EventStore(connection: opened).prepareWorkerSession(.claimer)
                    coordinator = opened
                } catch {
                    coordinator = nil
                    state.withLock { $0.nextCoordinatorAttempt = .now + .seconds(5) }
                    log(error, "claimer cannot reach the Citus coordinator for rate-limit tokens; none granted", throttle: &throttle)
                    return
                }
            }
            if let coordinator { bucket = EventStore(connection: coordinator) }
        }
        for (trigger, wanted) in requests {
            guard let rate = routes[trigger]?.trigger.protection.rateLimit else { continue }
            let granted: Int
            do {
                granted = try bucket.reserveTokens(
                    trigger: trigger, wanted: wanted, perSecond: rate.perSecond, burst: rate.burst)
            } catch where onCoordinator {
                coordinator = nil
                state.withLock { $0.nextCoordinatorAttempt = .now + .seconds(5) }
                log(error, "claimer could not reserve rate-limit tokens on the Citus coordinator; none granted", throttle: &throttle)
                return
            }
            flow.granted(granted, to: TriggerRef(source: source, name: trigger))
        }
    }

    /// Returns whether some trigger got all it asked for (more may be due at once).
    private func claim(
        _ limits: [String: Int], on connection: PGConnection, installation: EventIDKey, keyed: Set<String>,
        keyCursors: inout KeyCursors, batches: inout BatchAssembler<HeldEvent>
    ) throws(PGError) -> Bool {
        let started = ContinuousClock.now
        let leaseEnds = started + .seconds(config.worker.leaseSeconds)
        let events = try EventStore(connection: connection).claimBatch(
            limits: limits, after: keyCursors.starts, keyed: keyed, workerID: workerID,
            leaseSeconds: config.worker.leaseSeconds, source: source)
        let reported = keyCursors.advance(asked: limits, claimed: events)
        stats.recordFetch(claimed: events.count, seconds: (ContinuousClock.now - started).seconds)
        let now = Date()
        var counts: [String: Int] = [:]
        var toBatch: [String: [BatchAssembler<HeldEvent>.Entry]] = [:]
        // A claim's events come grouped by trigger: the route is looked up, and the count
        // kept, once per run.
        for (trigger, run) in events.chunked(on: \.triggerName) { counts[trigger, default: 0] += run.count }
        var route: TriggerRoute?
        var jobs = events.compactMap { event -> DeliveryJob? in
            if route?.trigger.name != event.triggerName { route = routes[event.triggerName] }
            guard let route else { return nil }
            if route.trigger.schedule != nil {
                return scheduledJob(event, route: route, installation: installation, leaseEnds: leaseEnds, now: now)
            }
            if route.trigger.batch != nil {
                toBatch[route.trigger.name, default: []].append(
                    batchEntry(
                        event, trigger: route.trigger, installation: installation, claimedAt: started, leaseEnds: leaseEnds))
                return nil
            }
            return DeliveryJob(event: event, route: route, installation: installation, leaseEnds: leaseEnds)
        }
        let wallNow = now.timeIntervalSince1970
        for (name, entries) in toBatch.sorted(by: { $0.key < $1.key }) {
            guard let batch = routes[name]?.trigger.batch else { continue }
            let ready = batches.add(entries, trigger: name, config: batch, now: .now, wallNow: wallNow)
            jobs += ready.compactMap { batchJob($0, trigger: name, installation: installation) }
        }
        flow.claimed(jobs, events: counts, limits: reported, source: source)
        if logger.logLevel <= .trace {
            logger.trace("claimed", metadata: ["asked": "\(limits)", "got": "\(events.count)"])
        }
        // Against what was asked, not what flow control is told: a key walk that wrapped is
        // reported as full (so its trigger is asked again) though it found fewer.
        return limits.contains { name, limit in limit > 0 && counts[name, default: 0] >= limit }
    }

    /// A claimed event of a batched trigger, waiting for its batch. It must be handed to
    /// delivery by half the time its lease leaves for sending, whatever its batch's wait.
    private func batchEntry(
        _ event: ClaimedEvent, trigger: TriggerConfig, installation: EventIDKey, claimedAt: ContinuousClock.Instant,
        leaseEnds: ContinuousClock.Instant
    ) -> BatchAssembler<HeldEvent>.Entry {
        let messageID = event.importedID ?? EventID.uuid(key: installation, number: event.id)
        let sendingWindow = leaseEnds - .seconds(trigger.retry.timeoutSeconds) - claimedAt
        return .init(
            event: HeldEvent(event: event, leaseEnds: leaseEnds),
            payload: DeliveryRequest.payloadBytes(event: event, trigger: trigger, messageID: messageID),
            createdAtEpoch: event.createdAtEpoch, sendBy: claimedAt + sendingWindow / 2)
    }

    /// One request for a ready batch (its lease is its earliest event's).
    private func batchJob(
        _ entries: [BatchAssembler<HeldEvent>.Entry], trigger name: String, installation: EventIDKey
    ) -> DeliveryJob? {
        guard let route = routes[name], let leaseEnds = entries.map(\.event.leaseEnds).min() else { return nil }
        return DeliveryJob(
            batch: entries.map { ($0.event.event, $0.payload) }, route: route, installation: installation,
            leaseEnds: leaseEnds)
    }

    /// Hands batches whose wait is over to delivery.
    private func sendDueBatches(_ batches: inout BatchAssembler<HeldEvent>, installation: EventIDKey) {
        let due = batches.takeDue(now: .now)
        guard !due.isEmpty else { return }
        let jobs = due.compactMap { batchJob($0.entries, trigger: $0.trigger, installation: installation) }
        flow.claimed(jobs, events: [:], limits: [:], source: source)
    }

    /// At shutdown, gives back the leases of events still waiting for their batch, so
    /// another worker need not wait for them to lapse (if this fails, they lapse).
    private func releaseHeld(_ batches: inout BatchAssembler<HeldEvent>, store: EventStore) {
        let held = batches.takeAll().flatMap { $0.entries.map(\.event.event) }
        guard !held.isEmpty else { return }
        do {
            try store.releaseUnsent(held, workerID: workerID)
        } catch {
            logger.warning(
                "could not give back the leases of events waiting for their batch; they are due again when the lease ends",
                metadata: ["count": "\(held.count)", "error": "\(error)"])
        }
    }

    /// A cron tick or one-off event: its trigger as this event is sent (scheduled time, and
    /// for one-off events their own webhook, headers and retries), or the refusal to record.
    private func scheduledJob(
        _ event: ClaimedEvent, route: TriggerRoute, installation: EventIDKey, leaseEnds: ContinuousClock.Instant,
        now: Date
    ) -> DeliveryJob {
        let decoded = ScheduledEventDecoder.decode(
            event, route: route.trigger, now: now, environment: ProcessInfo.processInfo.environment,
            leaseSeconds: config.worker.leaseSeconds)
        // A cron tick goes to its trigger's webhook, whose host key was parsed once; a one-off
        // event's own webhook is parsed here.
        return DeliveryJob(
            event: event, trigger: decoded.trigger, policy: RetryPolicy(trigger: decoded.trigger, worker: config.worker),
            installation: installation, hostKey: decoded.trigger.webhook == route.trigger.webhook ? route.hostKey : nil,
            leaseEnds: leaseEnds, refusal: decoded.refusal)
    }

    private func connect(_ backoff: inout ReconnectBackoff, _ throttle: inout ErrorLogThrottle) -> PGConnection? {
        do {
            let connection = try PGConnection(url: config.database.url)
            if state.withLock({ $0.installation }) == nil {
                // The source was down when the worker started: check it now.
                let (installation, orphans, drift) = try HeraldWorker.preflight(config, logger: logger)
                HeraldWorker.warnAboutOrphans(orphans, logger: logger)
                onDrift(drift)
                state.withLock { $0.installation = installation }
            }
            try EventStore(connection: connection).prepareWorkerSession(.claimer)
            try connection.listen(Self.channel)
            let wasDisconnected = state.withLock { state in
                defer { state.lastConnectionFailed = false }
                return state.lastConnectionFailed
            }
            setConnected(true)
            if wasDisconnected { logger.info("claimer connected to the database") }
            // The backoff is reset only after a claim succeeds: a server that accepts
            // connections but fails every query must not be reconnected to in a tight loop.
            return connection
        } catch {
            let wait = backoff.next()
            log(error, "claimer cannot reach the database; retrying", throttle: &throttle, retryIn: wait)
            state.withLock { $0.lastConnectionFailed = true }
            setConnected(
                false, problem: (error as? PGError)?.isConnectionProblem ?? true ? "database unreachable" : "\(error)")
            pause(wait)
            return nil
        }
    }

    private func log(
        _ error: any Error, _ message: Logger.Message, throttle: inout ErrorLogThrottle, retryIn: Duration? = nil
    ) {
        guard let suppressed = throttle.admit("\(message) \(error)", now: .now) else { return }
        var metadata: Logger.Metadata = ["error": "\(error)"]
        if let retryIn { metadata["retry_in_ms"] = "\(retryIn.milliseconds)" }
        if suppressed > 0 { metadata["repeated"] = "\(suppressed)" }
        logger.warning(message, metadata: metadata)
    }

    /// Sleeps for `duration` in short slices, returning early at shutdown; the heartbeat
    /// keeps beating, because a loop that waits for the database is alive.
    private func pause(_ duration: Duration) {
        let end = ContinuousClock.now + duration
        while !isStopping && ContinuousClock.now < end {
            heartbeat.beat()
            let slice = min(end - ContinuousClock.now, .milliseconds(100))
            Thread.sleep(forTimeInterval: max(slice.seconds, 0.001))
        }
    }
}

/// A claimed event waiting in its trigger's batch, with its lease as this worker sees it.
struct HeldEvent {
    var event: ClaimedEvent
    var leaseEnds: ContinuousClock.Instant
}
