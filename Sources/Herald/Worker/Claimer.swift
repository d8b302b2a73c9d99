import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Claims due events and hands them to flow control, on a thread and connection of its own.
///
/// What to claim and when is ``FlowControl``'s decision; this loop executes it. Between
/// claims it sleeps in `poll` on its connection's socket (LISTEN herald_events) and flow
/// control's wake pipe: a capture NOTIFY, freed room or shutdown wakes it at once; with no
/// signal it polls every `fetch_interval_ms` (LISTEN does not survive pgbouncer in
/// transaction mode, and retries fall due silently).
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
    }

    private let state = Mutex(State())
    private let config: HeraldConfig
    private let workerID: String
    private let installation: EventIDKey
    private let jobsByTrigger: [String: (TriggerConfig, RetryPolicy, String)]
    private let flow: FlowController
    private let stats: WorkerStats
    private let logger: Logger
    private let thread = Mutex<OwnedThread?>(nil)
    /// When the loop last turned, connected or not, for the watchdog.
    let heartbeat = Heartbeat()

    public init(
        config: HeraldConfig, workerID: String, installation: EventIDKey, flow: FlowController, stats: WorkerStats,
        logger: Logger
    ) {
        self.config = config
        self.workerID = workerID
        self.installation = installation
        self.flow = flow
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

    /// The routes flow control needs: each trigger's host and request timeout.
    static func routes(_ config: HeraldConfig) -> [FlowRoute] {
        config.triggers.map {
            FlowRoute(
                trigger: $0.name, hostKey: DeliveryJob.hostKey($0.webhook), timeout: .seconds($0.retry.timeoutSeconds))
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

    func shutdown() async {
        state.withLock { $0.stopping = true }
        flow.wakeClaimer()
        await thread.withLock { $0 }?.join()
    }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    private func runLoop() {
        var connection: PGConnection?
        var reconnectBackoff = ReconnectBackoff()
        var queryBackoff = ReconnectBackoff()
        var throttle = ErrorLogThrottle()

        while !isStopping {
            heartbeat.beat()
            guard let open = connection ?? connect(&reconnectBackoff, &throttle) else { continue }
            connection = open
            do {
                switch flow.planClaim() {
                case .stop:
                    return
                case .claim(let limits):
                    try claim(limits, on: open)
                    queryBackoff.reset()
                    reconnectBackoff.reset()
                    throttle.reset()
                case .wait(let until):
                    if logger.logLevel <= .trace {
                        logger.trace("claimer waits", metadata: ["until_poll": "\(until != nil)"])
                    }
                    // Every wait has a floor and a ceiling: no spin, and the loop turns at
                    // least once a second for the watchdog and the poll.
                    let timeout = until.map { $0 - ContinuousClock.now } ?? .seconds(1)
                    let clamped = min(max(timeout, .milliseconds(1)), .seconds(1))
                    let notifications = try open.waitForNotifications(
                        timeoutMilliseconds: Int32(clamped.milliseconds), wakeFD: flow.claimerWakeDescriptor)
                    flow.drainClaimerWakeups()
                    if !notifications.isEmpty { flow.notified() }
                }
            } catch where error.isConnectionProblem || !open.isOpen {
                log(error, "claimer lost its database connection; reconnecting", throttle: &throttle)
                connection = nil
                state.withLock { $0.connected = false }
                // Whatever was due may still be: look as soon as the connection is back.
                flow.notified()
            } catch {
                let wait = queryBackoff.next()
                log(error, "claimer query failed; backing off", throttle: &throttle, retryIn: wait)
                pause(wait)
            }
        }
    }

    private func claim(_ limits: [String: Int], on connection: PGConnection) throws(PGError) {
        let started = ContinuousClock.now
        let leaseEnds = started + .seconds(config.worker.leaseSeconds)
        let events = try EventStore(connection: connection).claimBatch(
            limits: limits, workerID: workerID, leaseSeconds: config.worker.leaseSeconds)
        stats.recordFetch(claimed: events.count, seconds: (ContinuousClock.now - started).seconds)
        let jobs = events.compactMap { event -> DeliveryJob? in
            guard let (trigger, policy, hostKey) = jobsByTrigger[event.triggerName] else { return nil }
            return DeliveryJob(
                event: event, trigger: trigger, policy: policy, installation: installation, hostKey: hostKey,
                leaseEnds: leaseEnds)
        }
        flow.claimed(jobs, limits: limits)
        if logger.logLevel <= .trace {
            logger.trace("claimed", metadata: ["asked": "\(limits)", "got": "\(events.count)"])
        }
    }

    private func connect(_ backoff: inout ReconnectBackoff, _ throttle: inout ErrorLogThrottle) -> PGConnection? {
        do {
            let connection = try PGConnection(url: config.database.url)
            try EventStore(connection: connection).prepareWorkerSession()
            try connection.listen(Self.channel)
            let wasDisconnected = state.withLock { state in
                defer {
                    state.connected = true
                    state.lastConnectionFailed = false
                }
                return state.lastConnectionFailed
            }
            if wasDisconnected { logger.info("claimer connected to the database") }
            // The backoff is reset only after a claim succeeds: a server that accepts
            // connections but fails every query must not be reconnected to in a tight loop.
            return connection
        } catch {
            let wait = backoff.next()
            log(error, "claimer cannot reach the database; retrying", throttle: &throttle, retryIn: wait)
            state.withLock { $0.lastConnectionFailed = true }
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
