import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Sends operator alerts (`alerts:` in the config) as signed Standard Webhooks, on a thread
/// of its own, one request at a time, so alerts never compete with deliveries.
///
/// - ``emit(_:)`` never blocks and never does I/O: it takes a short lock, counts the alert in
///   its type's digest window and queues it or folds it (see ``AlertDigest``).
/// - A failed request is retried with backoff (1 s doubling to 60 s, 10 attempts), then the
///   alert is dropped with a warning and counted in `herald_alerts_failed_total`.
/// - The queue is bounded; what does not fit is folded into its type's digest and counted
///   in `herald_alerts_overflow_total`.
/// - On graceful shutdown a request in flight may finish, then what is left (digests
///   included) gets one attempt each, all within a few seconds; the first failure ends that,
///   and the rest is logged and counted as failed.
///   Put the dispatcher before the worker's parts in a ServiceGroup: it then stops after
///   them and sends what they reported while stopping.
public final class AlertDispatcher: Service {
    struct Tuning: Sendable {
        var queueCapacity = 1000
        var maxAttempts = 10
        var firstRetry = Duration.seconds(1)
        var maxRetry = Duration.seconds(60)
        var requestTimeout = Duration.seconds(10)
        var shutdownBudget = Duration.seconds(5)
        /// The longest the thread sleeps without looking at the digests.
        var tick = Duration.seconds(1)
    }

    /// Totals since start (the same as the metrics, readable without a metrics backend).
    public struct Counts: Sendable, Equatable {
        /// Requests answered 2xx.
        public var sent = 0
        /// Alerts given up on: retries exhausted, unsent at shutdown, or emitted after it.
        public var failed = 0
        /// Alerts folded into a digest instead of sent on their own (overflow included).
        public var folded = 0
        /// Alerts folded because the queue was full.
        public var overflowed = 0
    }

    private struct State: ~Copyable {
        var inbox: AlertInbox
        var counts = Counts()
        /// Set by ``stop()``: the end of the shutdown budget.
        var stopDeadline: ContinuousClock.Instant?
        /// Set once the thread took the last alerts: later ones cannot be sent.
        var closed = false
    }

    /// An alert being sent, with its retry schedule.
    private struct Outgoing {
        var message: AlertMessage
        var attempts = 0
        var notBefore = ContinuousClock.now
    }

    public let config: AlertsConfig
    private let redactor: Redactor
    private let tuning: Tuning
    private let logger: Logger
    private let state: Mutex<State>
    private let transport = AlertTransport()
    private let thread = Mutex<OwnedThread?>(nil)
    private let sentCounters = Mutex<[String: Counter]>([:])
    private let failedCounter = Counter(label: "herald_alerts_failed_total")
    private let foldedCounter = Counter(label: "herald_alerts_folded_total")
    private let overflowCounter = Counter(label: "herald_alerts_overflow_total")

    /// Create after bootstrapping the metrics system: metric handles are made here.
    /// - Parameter redactor: applied to every alert body (``Redactor/init(config:environment:)``).
    public convenience init(config: AlertsConfig, redactor: Redactor = .urlsOnly, logger: Logger) {
        self.init(config: config, redactor: redactor, logger: logger, tuning: Tuning())
    }

    init(config: AlertsConfig, redactor: Redactor = .urlsOnly, logger: Logger, tuning: Tuning) {
        self.config = config
        self.redactor = redactor
        self.tuning = tuning
        var logger = logger
        logger[metadataKey: "alerts_webhook"] = "\(config.displayWebhook)"
        self.logger = logger
        state = Mutex(
            State(
                inbox: AlertInbox(
                    digest: AlertDigest(intervalSeconds: config.digestIntervalSeconds), capacity: tuning.queueCapacity)))
    }

    /// Queues `alert` for sending, or folds it into a digest. Any thread; returns at once.
    public func emit(_ alert: Alert) {
        let pending = PendingAlert(alert: alert, occurredAt: Date())
        let now = ContinuousClock.now
        let (admission, wake): (AlertInbox.Admission?, Bool) = state.withLock { state in
            guard !state.closed else {
                state.counts.failed += 1
                return (nil, false)
            }
            let admission = state.inbox.offer(pending, now: now)
            if admission != .queued { state.counts.folded += 1 }
            if admission == .overflowed { state.counts.overflowed += 1 }
            // Only the first alert of an empty queue can find the thread idle; with more
            // queued it is busy sending and takes the next when done.
            return (admission, admission == .queued && state.inbox.count == 1)
        }
        if wake { transport.wake() }
        switch admission {
        case .queued?:
            break
        case .folded?:
            foldedCounter.increment()
        case .overflowed?:
            foldedCounter.increment()
            overflowCounter.increment()
        case nil:
            failedCounter.increment()
            // Debug: a part that stops after the dispatcher could emit many; the counter shows it.
            logger.debug("alert emitted after the alert sender stopped; not sent", metadata: ["type": "\(alert.type)"])
        }
    }

    public var counts: Counts { state.withLock { $0.counts } }

    /// Sends alerts until graceful shutdown, then what is left within a few seconds.
    public func run() async throws {
        start()
        try? await gracefulShutdown()
        stop()
        await thread.withLock { $0 }?.join()
    }

    /// Starts the sending thread (once).
    func start() {
        thread.withLock { thread in
            if thread == nil { thread = OwnedThread(name: "herald-alerts") { [self] in runLoop() } }
        }
    }

    /// Asks the sending thread to finish: a request in flight may complete, then what is left
    /// gets one try; all within the shutdown budget from now.
    func stop() {
        let deadline = ContinuousClock.now + tuning.shutdownBudget
        state.withLock { $0.stopDeadline = $0.stopDeadline ?? deadline }
        transport.wake()
    }

    /// True once the sending thread has ended.
    var isFinished: Bool { thread.withLock { $0?.isFinished ?? false } }

    private var stopDeadline: ContinuousClock.Instant? { state.withLock { $0.stopDeadline } }

    private func runLoop() {
        logger.info("alerts enabled", metadata: ["digest_interval_sec": "\(config.digestIntervalSeconds)"])
        var current: Outgoing?
        var backoff = ReconnectBackoff(initial: tuning.firstRetry, maximum: tuning.maxRetry)
        var throttle = ErrorLogThrottle(interval: .seconds(300))
        while true {
            let now = ContinuousClock.now
            let needsNext = current == nil
            let (next, stopping, digestDue) = state.withLock { state -> (PendingAlert?, Bool, ContinuousClock.Instant?) in
                if state.stopDeadline != nil { return (nil, true, nil) }
                guard needsNext else { return (nil, false, nil) }
                let next = state.inbox.next(now: now)
                return (next, false, next == nil ? state.inbox.nextDigestDue : nil)
            }
            if stopping { break }
            if let next { current = Outgoing(message: AlertMessage(next, redactor: redactor)) }
            guard var outgoing = current else {
                transport.sleep(min(tuning.tick, digestDue.map { $0 - now } ?? tuning.tick))
                continue
            }
            if outgoing.notBefore > now {
                transport.sleep(min(tuning.tick, outgoing.notBefore - now))
                continue
            }
            // A request in flight at shutdown may finish within the budget (abandoning it would
            // send the alert twice); past the budget it is abandoned and counted as failed.
            let result = attempt(outgoing.message, timeout: tuning.requestTimeout) {
                stopDeadline.map { .now >= $0 } ?? false
            }
            guard let result else { break }
            outgoing.attempts += 1
            if result.isSuccess {
                current = nil
                backoff.reset()
                throttle.reset()
                continue
            }
            let problem = Self.describe(result)
            if outgoing.attempts >= tuning.maxAttempts {
                current = nil
                backoff.reset()
                recordFailed(1)
                logger.warning(
                    "alert dropped: the alert webhook failed every attempt",
                    metadata: [
                        "type": "\(outgoing.message.type)", "alert_id": "\(outgoing.message.id)",
                        "attempts": "\(outgoing.attempts)", "error": "\(problem)",
                    ])
                continue
            }
            let wait = backoff.next()
            outgoing.notBefore = .now + wait
            current = outgoing
            // Keyed by status or error class: curl's messages carry timings and never repeat.
            if let suppressed = throttle.admit(Self.kind(of: result), now: .now) {
                logger.warning(
                    "alert webhook failed; retrying",
                    metadata: [
                        "type": "\(outgoing.message.type)", "alert_id": "\(outgoing.message.id)",
                        "attempt": "\(outgoing.attempts)", "retry_in_ms": "\(wait.milliseconds)", "error": "\(problem)",
                        "repeated": "\(suppressed)",
                    ])
            }
        }
        finish(current?.message)
    }

    /// At shutdown: one attempt each for what is left, oldest first, within the shutdown
    /// budget; the first failure ends it (the receiver is down, more tries would only wait).
    private func finish(_ current: AlertMessage?) {
        let rest = state.withLock { state in
            state.closed = true
            return state.inbox.drain()
        }
        let total = (current == nil ? 0 : 1) + rest.count
        guard total > 0 else { return }
        let deadline = stopDeadline ?? .now + tuning.shutdownBudget
        var sent = 0
        var problem: String?
        var queued = rest[...]
        // Messages are made one by one: after a failure the rest need not be.
        var message = current ?? queued.popFirst().map { AlertMessage($0, redactor: redactor) }
        while let next = message {
            let remaining = deadline - .now
            guard remaining > .milliseconds(10) else {
                problem = "shutdown budget of \(tuning.shutdownBudget) spent"
                break
            }
            let result = attempt(next, timeout: min(tuning.requestTimeout, remaining), shouldAbort: { false })
            guard let result, result.isSuccess else {
                problem = result.map(Self.describe) ?? "aborted"
                break
            }
            sent += 1
            message = queued.popFirst().map { AlertMessage($0, redactor: redactor) }
        }
        if sent < total {
            recordFailed(total - sent)
            logger.warning(
                "alerts not sent at shutdown",
                metadata: ["count": "\(total - sent)", "sent": "\(sent)", "error": "\(problem ?? "unknown")"])
        }
    }

    /// One POST of `message`, counted in `herald_alerts_sent_total{type}` when it succeeds.
    private func attempt(_ message: AlertMessage, timeout: Duration, shouldAbort: () -> Bool) -> AttemptResult? {
        let headers = message.headers(timestamp: Int(Date().timeIntervalSince1970), config: config)
        let result = transport.post(
            url: config.webhook, headers: headers, body: message.body, timeout: timeout, shouldAbort: shouldAbort)
        if result?.isSuccess == true {
            state.withLock { $0.counts.sent += 1 }
            sentCounter(message.type).increment()
            logger.debug("alert sent", metadata: ["type": "\(message.type)", "alert_id": "\(message.id)"])
        }
        return result
    }

    private func sentCounter(_ type: String) -> Counter {
        sentCounters.withLock { counters in
            if let counter = counters[type] { return counter }
            let counter = Counter(label: "herald_alerts_sent_total", dimensions: [("type", type)])
            counters[type] = counter
            return counter
        }
    }

    private func recordFailed(_ count: Int) {
        state.withLock { $0.counts.failed += count }
        failedCounter.increment(by: count)
    }

    private static func kind(of result: AttemptResult) -> String {
        switch result {
        case .response(let status, _): "HTTP \(status)"
        case .failure(let errorClass, _): errorClass.rawValue
        }
    }

    private static func describe(_ result: AttemptResult) -> String {
        switch result {
        case .response(let status, _): "HTTP \(status)"
        case .failure(let errorClass, let message): "\(errorClass.rawValue): \(message)"
        }
    }
}
