import Foundation
import Logging
import Synchronization

/// Claims due events and hands them to the deliverer, on a thread and connection of its own.
///
/// It claims while the pool has room, keeping one batch queued beyond the in-flight
/// requests so the pool never waits on the database. Between claims it sleeps in `poll` on
/// its connection's socket (LISTEN herald_events) and a wake pipe: a capture NOTIFY, freed
/// capacity or shutdown wakes it at once; with no signal it polls every `fetch_interval_ms`
/// (LISTEN does not survive pgbouncer in transaction mode, and retries fall due silently).
public final class Claimer: Sendable {
    static let channel = "herald_events"

    private struct State {
        var stopping = false
        var lastHealthy: ContinuousClock.Instant?
        var connected = false
    }

    private let state = Mutex(State())
    private let wakePipe = WakePipe()
    private let config: HeraldConfig
    private let workerID: String
    private let installation: UUID
    private let jobsByTrigger: [String: (TriggerConfig, RetryPolicy, String)]
    private let deliverer: Deliverer
    private let recorder: Recorder
    private let stats: WorkerStats
    private let logger: Logger
    private let thread = Mutex<OwnedThread?>(nil)

    public init(
        config: HeraldConfig, workerID: String, installation: UUID, deliverer: Deliverer, recorder: Recorder,
        stats: WorkerStats, logger: Logger
    ) {
        self.config = config
        self.workerID = workerID
        self.installation = installation
        self.deliverer = deliverer
        self.recorder = recorder
        self.stats = stats
        self.logger = logger
        var jobs: [String: (TriggerConfig, RetryPolicy, String)] = [:]
        for trigger in config.triggers {
            jobs[trigger.name] = (
                trigger, RetryPolicy(trigger: trigger, worker: config.worker), DeliveryJob.hostKey(trigger.webhook)
            )
        }
        jobsByTrigger = jobs
    }

    public func start() {
        thread.withLock { $0 = OwnedThread(name: "herald-claimer") { [self] in runLoop() } }
    }

    /// Called by the deliverer when the queue has room for another batch.
    public func capacityAvailable() {
        wakePipe.signal()
    }

    /// True while the claimer has a database connection and its loop turned recently.
    public var isHealthy: Bool {
        state.withLock { state in
            guard state.connected, let last = state.lastHealthy else { return false }
            let limit = Duration.milliseconds(config.worker.fetchIntervalMilliseconds) * 3 + .seconds(5)
            return ContinuousClock.now - last < limit
        }
    }

    public func shutdown() async {
        state.withLock { $0.stopping = true }
        wakePipe.signal()
        await thread.withLock { $0 }?.join()
    }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    private func runLoop() {
        let worker = config.worker
        let triggerNames = Array(jobsByTrigger.keys)
        let pollInterval = Duration.milliseconds(worker.fetchIntervalMilliseconds)
        let statsInterval = Duration.seconds(min(worker.statsLogIntervalSeconds, 10))
        var connection: PGConnection?
        var backoff = ReconnectBackoff()
        var claimNow = true  // a batch may be due already at start
        var nextPoll = ContinuousClock.now
        var nextAgeCheck = ContinuousClock.now

        while !isStopping {
            guard let open = connection ?? connect(&backoff) else { continue }
            connection = open
            let store = EventStore(connection: open)
            do {
                let now = ContinuousClock.now
                state.withLock { $0.lastHealthy = now }
                if now >= nextAgeCheck {
                    stats.setOldestPendingAge(try store.oldestPendingAgeSeconds())
                    nextAgeCheck = now + statsInterval
                }
                let outstanding = deliverer.outstanding
                let room = worker.httpPoolSize + worker.fetchBatchSize - outstanding
                // Outcomes waiting to be written count too: a database that accepts claims
                // but writes slowly must not let memory grow without bound.
                let recorderHasRoom = recorder.backlog < recorder.backlogLimit
                if (claimNow || now >= nextPoll) && outstanding <= worker.httpPoolSize && room > 0 && recorderHasRoom {
                    let limit = min(worker.fetchBatchSize, room)
                    let started = ContinuousClock.now
                    let events = try store.claimBatch(
                        limit: limit, workerID: workerID, leaseSeconds: worker.leaseSeconds, triggers: triggerNames)
                    stats.recordFetch(claimed: events.count, seconds: (ContinuousClock.now - started).seconds)
                    nextPoll = ContinuousClock.now + pollInterval
                    // A full batch means more may be due: claim again as soon as there is room.
                    claimNow = events.count == limit
                    deliverer.submit(events.compactMap(job))
                    if claimNow && deliverer.outstanding <= worker.httpPoolSize { continue }
                }
                let timeout = recorderHasRoom ? max(.zero, nextPoll - ContinuousClock.now) : .milliseconds(10)
                let notifications = try open.waitForNotifications(
                    timeoutMilliseconds: Int32(min(timeout.milliseconds, 1000)), wakeFD: wakePipe.descriptor)
                // A capacity wake-up needs no flag: the loop re-checks the room, and claims
                // again only if the last claim was full.
                wakePipe.drain()
                if !notifications.isEmpty { claimNow = true }
            } catch {
                logger.warning("claimer lost its database connection; reconnecting", metadata: ["error": "\(error)"])
                connection = nil
                state.withLock { $0.connected = false }
                claimNow = true
            }
        }
        state.withLock { $0.connected = false }
    }

    private func connect(_ backoff: inout ReconnectBackoff) -> PGConnection? {
        do {
            let connection = try PGConnection(url: config.database.url)
            try EventStore(connection: connection).useAsynchronousCommit()
            try connection.listen(Self.channel)
            state.withLock { $0.connected = true }
            if backoff.current != backoff.initial { logger.info("claimer reconnected to the database") }
            backoff.reset()
            return connection
        } catch {
            let wait = backoff.next()
            logger.warning(
                "claimer cannot reach the database; retrying",
                metadata: ["error": "\(error)", "retry_in_ms": "\(wait.milliseconds)"])
            var descriptor = pollfd(fd: wakePipe.descriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, Int32(wait.milliseconds))
            wakePipe.drain()
            return nil
        }
    }

    private func job(for event: ClaimedEvent) -> DeliveryJob? {
        guard let (trigger, policy, hostKey) = jobsByTrigger[event.triggerName] else { return nil }
        return DeliveryJob(event: event, trigger: trigger, policy: policy, installation: installation, hostKey: hostKey)
    }
}
