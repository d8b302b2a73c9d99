import CCurl
import CCurlShims
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// An event ready to send, with the trigger that says how. A class: jobs move through flow
/// control's queues and the delivery threads by reference, one retain per move instead of
/// one per field of the trigger and the event (which showed in profiles).
public final class DeliveryJob: Sendable, FlowJob {
    /// The event sent, or the first of a batch's.
    public let event: ClaimedEvent
    /// Every event the request carries: `[event]`, or a batch's events in claim order.
    public var events: [ClaimedEvent] { batchEvents.isEmpty ? [event] : batchEvents }
    /// A batch's events; empty for one event (a list of one was an allocation per job).
    private let batchEvents: [ClaimedEvent]
    /// The batch's `webhook-id` when the request carries a batch (`batch:`); nil for one event.
    public let batchID: String?
    /// The trigger, its retry policy and host, shared by every job of the trigger.
    public let route: TriggerRoute
    public var trigger: TriggerConfig { _read { yield route.trigger } }
    public var policy: RetryPolicy { _read { yield route.policy } }
    /// scheme://host:port, the unit of the per-host limit.
    public var hostKey: String { route.hostKey }
    public let timeoutMilliseconds: Int
    public let prepared: DeliveryRequest.Prepared
    /// Lease end minus the request timeout: a job not started by then is dropped unsent.
    public let startDeadline: ContinuousClock.Instant
    /// Why this job must not be sent (a scheduled event past its tolerance, a one-off event
    /// that cannot be sent as stored, a request transform that fails on it): its attempt is
    /// recorded as that failure instead.
    public let refusal: (DeliveryErrorClass, String)?

    public var triggerName: String { route.trigger.name }
    public var sourceName: String { event.source }

    /// `hostKey` defaults to one parsed from the webhook. `leaseEnds` is the lease as this
    /// worker sees it: the local time the claim was sent plus the lease (the database's
    /// lease starts later, so this errs on the safe side).
    public convenience init(
        event: ClaimedEvent, trigger: TriggerConfig, policy: RetryPolicy, installation: EventIDKey, hostKey: String? = nil,
        leaseEnds: ContinuousClock.Instant, refusal: (DeliveryErrorClass, String)? = nil
    ) {
        self.init(
            event: event, route: TriggerRoute(trigger: trigger, policy: policy, hostKey: hostKey),
            installation: installation, leaseEnds: leaseEnds, refusal: refusal)
    }

    /// The claimer's form: the route was made once for the trigger, because copying the
    /// trigger's configuration, parsing its URL and building its header list per event
    /// showed in profiles.
    public init(
        event: ClaimedEvent, route: TriggerRoute, installation: EventIDKey, leaseEnds: ContinuousClock.Instant,
        refusal: (DeliveryErrorClass, String)? = nil
    ) {
        self.event = event
        batchEvents = []
        batchID = nil
        self.route = route
        timeoutMilliseconds = route.trigger.retry.timeoutSeconds * 1000
        startDeadline = leaseEnds - .milliseconds(timeoutMilliseconds)
        let prepared = DeliveryRequest.Prepared(event: event, route: route, installation: installation)
        self.prepared = prepared
        // A transform that fails on this event is final: the receiver was never asked.
        self.refusal = refusal ?? prepared.transformFailure.map { (DeliveryErrorClass.unsendable, $0) }
    }

    /// One request for a batch of a trigger's events (`batch:`): `{"events": [payload, …]}`
    /// with each payload as it would be sent alone, under a batch id of its own (the same
    /// for the same events, so a receiver can tell a repeated batch). A transform applies
    /// to the batch as a whole.
    public init(
        batch: [(event: ClaimedEvent, payload: [UInt8])], route: TriggerRoute, installation: EventIDKey,
        leaseEnds: ContinuousClock.Instant
    ) {
        precondition(!batch.isEmpty, "a batch holds at least one event")
        event = batch[0].event
        batchEvents = batch.map(\.event)
        let batchID = BatchID.make(key: installation, events: batchEvents.map(\.id))
        self.batchID = batchID
        self.route = route
        timeoutMilliseconds = route.trigger.retry.timeoutSeconds * 1000
        startDeadline = leaseEnds - .milliseconds(timeoutMilliseconds)
        let prepared = DeliveryRequest.Prepared(
            payload: DeliveryRequest.batchBody(batch.map(\.payload)), trigger: route.trigger, messageID: batchID,
            configuredHeaders: route.configuredHeaders)
        self.prepared = prepared
        refusal = prepared.transformFailure.map { (DeliveryErrorClass.unsendable, $0) }
    }

    static func hostKey(_ url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host else { return url }
        let scheme = components.scheme?.lowercased() ?? "http"
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(host.lowercased()):\(port)"
    }
}

/// The delivery pool: a libcurl multi handle driven by `curl_multi_poll` on a thread of
/// its own (`http_threads` of them when one thread cannot keep up). What to start, what to
/// drop and when to sleep is decided by the shared ``FlowController``; the threads only run
/// transfers. Jobs wait in flow control, not inside curl, so their timeout starts only when
/// they are really sent; connections are kept alive and reused by the multi handle's cache.
public final class Deliverer: Service {
    private nonisolated(unsafe) let multis: [UnsafeMutableRawPointer]
    private let settings: WorkerSettings
    private let flow: FlowController
    private let shutdownDeadline: ShutdownDeadline
    private let logger: Logger
    private let stats: WorkerStats
    private let onOutcomes: @Sendable ([DeliveryOutcome]) -> Void
    private let threads = Mutex<[OwnedThread]>([])
    /// When each delivery loop last turned, for the watchdog.
    let heartbeats: [Heartbeat]

    public init(
        settings: WorkerSettings, flow: FlowController, shutdownDeadline: ShutdownDeadline, logger: Logger,
        stats: WorkerStats, onOutcomes: @escaping @Sendable ([DeliveryOutcome]) -> Void
    ) {
        _ = CurlTransfer.globalInit
        let shards = max(1, settings.httpThreads)
        let multis: [UnsafeMutableRawPointer] = (0..<shards).map { _ in curl_multi_init() }
        self.multis = multis
        self.settings = settings
        self.flow = flow
        self.shutdownDeadline = shutdownDeadline
        self.logger = logger
        self.stats = stats
        self.onOutcomes = onOutcomes
        heartbeats = multis.map { _ in Heartbeat() }
        // Keep an idle connection for every slot, or keep-alive is lost under load.
        for multi in multis {
            herald_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, settings.httpPoolSize)
        }
        flow.setDeliveryWake { [multis = UnsafeSendable(multis)] in
            multis.value.forEach { curl_multi_wakeup($0) }
        }
    }

    deinit {
        multis.forEach { curl_multi_cleanup($0) }
    }

    /// Starts the delivery threads, runs until graceful shutdown, then stops taking jobs and
    /// lets running transfers finish until the worker's shutdown deadline.
    public func run() async throws {
        start()
        try? await gracefulShutdown()
        await shutdown()
    }

    func start() {
        // Each thread may run its share of the pool; the global and per-host limits are
        // enforced across all of them by flow control.
        let share = (settings.httpPoolSize + multis.count - 1) / multis.count
        threads.withLock { threads in
            threads = multis.indices.map { index in
                OwnedThread(name: "herald-http-\(index)") { [self] in
                    runLoop(multi: multis[index], capacity: share, heartbeat: heartbeats[index])
                }
            }
        }
    }

    /// True while every delivery loop turned within `limit`.
    func isTurning(within limit: Duration) -> Bool {
        heartbeats.allSatisfy { $0.isRecent(within: limit) }
    }

    func shutdown() async {
        let dropped = flow.beginStopping()
        _ = shutdownDeadline.start(grace: .seconds(settings.shutdownGraceSeconds))
        if dropped > 0 { logger.debug("dropped queued deliveries at shutdown", metadata: ["count": "\(dropped)"]) }
        for thread in threads.withLock({ $0 }) {
            await thread.join()
        }
    }

    private func runLoop(multi: UnsafeMutableRawPointer, capacity: Int, heartbeat: Heartbeat) {
        var transfers: [UnsafeMutableRawPointer: CurlTransfer] = [:]
        let handles = CurlHandlePool(capacity: capacity)
        while true {
            heartbeat.beat()
            let turn = flow.takeStartable(freeSlots: capacity - transfers.count)
            if !turn.dropped.isEmpty { reportDropped(turn.dropped) }
            // The turn's outcomes in one list, each finished request a range of it: a list
            // per request was an allocation per delivery.
            var finished = FinishedRequests()
            if !turn.start.isEmpty {
                // One clock read of each kind per turn, not per request.
                let clock = TurnClock()
                for job in turn.start {
                    startTransfer(job, clock: clock, multi: multi, handles: handles, into: &transfers, finished: &finished)
                }
            }
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            collectFinished(&transfers, into: &finished, multi: multi, handles: handles)
            if !finished.outcomes.isEmpty {
                stats.recordDeliveries(finished.outcomes)
                onOutcomes(finished.outcomes)
            }
            let timeout = flow.finished(
                finished.requests.map { ($0.hostKey, finished.outcomes[$0.outcomes]) }, freeSlots: capacity - transfers.count)

            if flow.isStopping {
                if transfers.isEmpty { break }
                if shutdownDeadline.hasPassed {
                    logger.warning(
                        "shutdown grace expired; aborting deliveries, their events will be delivered again",
                        metadata: ["count": "\(transfers.count)"])
                    for (handle, _) in transfers {
                        curl_multi_remove_handle(multi, handle)
                        handles.giveBack(handle)
                    }
                    flow.aborted(transfers.values.map(\.job))
                    transfers.removeAll()
                    break
                }
            }
            var ready: Int32 = 0
            let sleep = flow.isStopping ? min(timeout, .milliseconds(100)) : timeout
            curl_multi_poll(multi, nil, 0, Int32(sleep.milliseconds), &ready)
        }
    }

    private func reportDropped(_ jobs: [DeliveryJob]) {
        stats.recordLeaseExpiredDrops(jobs.count)
        logger.warning(
            "queued deliveries reached their lease deadline before a slot was free; not sent, they are due again when the lease ends",
            metadata: ["count": "\(jobs.count)", "first_event": "\(jobs[0].event.id)", "trigger": "\(jobs[0].trigger.name)"])
    }

    /// Adds a transfer for `job`, or its outcomes to `finished` when it cannot even start.
    private func startTransfer(
        _ job: DeliveryJob, clock: TurnClock, multi: UnsafeMutableRawPointer, handles: CurlHandlePool,
        into transfers: inout [UnsafeMutableRawPointer: CurlTransfer], finished: inout FinishedRequests
    ) {
        let request = DeliveryRequest(prepared: job.prepared, timestamp: clock.unixSeconds)
        func failed(_ failure: DeliveryErrorClass, _ message: String) {
            addOutcomes(job: job, request: request, result: .failure(failure, message: message), body: [],
                        duration: .zero, now: clock.wall, to: &finished)
        }
        if let (failure, message) = job.refusal { return failed(failure, message) }
        guard let handle = handles.take() else { return failed(.internal, "curl_easy_init failed") }
        let transfer = CurlTransfer(
            handle: handle, job: job, request: request, responseLimit: settings.maxResponseBytes, startedAt: clock.instant)
        let code = curl_multi_add_handle(multi, transfer.handle)
        guard code == CURLM_OK else {
            handles.giveBack(handle)
            return failed(.internal, String(cString: curl_multi_strerror(code)))
        }
        transfers[transfer.handle] = transfer
    }

    private func collectFinished(
        _ transfers: inout [UnsafeMutableRawPointer: CurlTransfer], into finished: inout FinishedRequests,
        multi: UnsafeMutableRawPointer, handles: CurlHandlePool
    ) {
        var left: Int32 = 0
        var clock: TurnClock?
        while let message = curl_multi_info_read(multi, &left) {
            guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle,
                let transfer = transfers.removeValue(forKey: handle)
            else { continue }
            let code = message.pointee.data.result
            curl_multi_remove_handle(multi, handle)
            let result = transfer.result(code)
            let now = clock ?? TurnClock()
            clock = now
            handles.giveBack(handle)
            addOutcomes(
                job: transfer.job, request: transfer.request, result: result, body: transfer.response,
                duration: now.instant - transfer.startedAt, now: now.wall,
                directive: ReceiverDirective(header: transfer.deliveryHeader), to: &finished)
        }
    }

    /// One outcome per event the request carried: a batch's events share the response, and
    /// each is judged by its own tries (one may be out of retries while the rest retry).
    private func addOutcomes(
        job: DeliveryJob, request: DeliveryRequest, result: AttemptResult, body: [UInt8], duration: Duration, now: Date,
        directive: ReceiverDirective? = nil, to finished: inout FinishedRequests
    ) {
        let milliseconds = Double(duration.components.seconds) * 1000
            + Double(duration.components.attoseconds) / 1e15
        let responseBody = body.isEmpty ? nil : String(decoding: body.prefix(settings.storedResponseBytes), as: UTF8.self)
        let first = finished.outcomes.count
        func add(_ event: ClaimedEvent) {
            let attempt = event.tries + 1
            let verdict = job.policy.verdict(
                attempt: attempt, result: result, directive: directive, now: now, keyed: event.orderingKey != nil)
            let outcome = DeliveryOutcome(
                event: event, attempt: attempt, result: result, decision: verdict.decision,
                requestHeaders: request.headers, responseBody: responseBody, durationMilliseconds: milliseconds,
                disableTrigger: verdict.disableTrigger, breakerFailure: verdict.breakerFailure, batchID: job.batchID)
            if logger.logLevel <= .debug {
                logger.debug(
                    "delivery attempt finished",
                    metadata: [
                        "trigger": "\(job.trigger.name)", "request": "\(request.messageID)",
                        "event": "\(job.batchID == nil ? request.messageID : String(event.id))",
                        "attempt": "\(attempt)",
                        "result": "\(outcome.statusCode.map(String.init) ?? outcome.errorClass ?? "")",
                        "decision": "\(verdict.decision.status)", "ms": "\(Int(milliseconds))",
                    ])
            }
            finished.outcomes.append(outcome)
        }
        if job.batchID == nil {
            add(job.event)
        } else {
            job.events.forEach(add)
        }
        finished.requests.append((job.hostKey, first..<finished.outcomes.count))
    }
}

/// A delivery turn's finished requests: every outcome in one list, and each request's host
/// and range of it (a batch's request has one outcome per event it carried).
private struct FinishedRequests {
    var outcomes: [DeliveryOutcome] = []
    var requests: [(hostKey: String, outcomes: Range<Int>)] = []
}

/// The times a delivery turn reads once for every request it starts or finishes: the
/// monotonic instant (durations), the wall clock (retry times) and its whole seconds
/// (`webhook-timestamp`). The turn lasts microseconds; reading the clocks per request showed
/// in the delivery thread's profile.
private struct TurnClock {
    let instant = ContinuousClock.now
    let wall = Date()
    var unixSeconds: Int { Int(wall.timeIntervalSince1970) }
}

/// Lets a value that is only read across threads (the multi handles, which curl allows to
/// be woken from any thread) cross into a `@Sendable` closure.
private struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
