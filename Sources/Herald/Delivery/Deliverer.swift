import CCurl
import CCurlShims
import Foundation
import Logging
import Synchronization

/// An event ready to send, with the trigger that says how.
public struct DeliveryJob: Sendable {
    public var event: ClaimedEvent
    public var trigger: TriggerConfig
    public var policy: RetryPolicy
    /// scheme://host:port, the unit of the per-host limit.
    public var hostKey: String
    public var timeoutMilliseconds: Int
    public var prepared: DeliveryRequest.Prepared

    /// `hostKey` defaults to one parsed from the webhook; the claimer passes one it parsed
    /// once per trigger, because URL parsing per event showed in profiles.
    public init(
        event: ClaimedEvent, trigger: TriggerConfig, policy: RetryPolicy, installation: UUID, hostKey: String? = nil
    ) {
        self.event = event
        self.trigger = trigger
        self.policy = policy
        self.hostKey = hostKey ?? Self.hostKey(trigger.webhook)
        timeoutMilliseconds = trigger.retry.timeoutSeconds * 1000
        prepared = DeliveryRequest.Prepared(event: event, trigger: trigger, installation: installation)
    }

    static func hostKey(_ url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host else { return url }
        let scheme = components.scheme?.lowercased() ?? "http"
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(host.lowercased()):\(port)"
    }
}

/// The delivery pool: a libcurl multi handle driven by `curl_multi_poll` on a thread of
/// its own (`http_threads` of them when one thread cannot keep up; they share one queue
/// and one set of limits). At most `http_pool_size` transfers run at once, and at most
/// `http_per_host_limit` to one host; connections are kept alive and reused by the multi
/// handle's cache. Jobs wait in Herald's queue, not inside curl, so their timeout starts
/// only when they are really sent.
public final class Deliverer: Sendable {
    private struct State: ~Copyable {
        var queue: [DeliveryJob] = []
        var inFlight = 0
        var perHost: [String: Int] = [:]
        var stopping = false
        var deadline: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private nonisolated(unsafe) let multis: [UnsafeMutableRawPointer]
    private let settings: WorkerSettings
    private let installation: UUID
    private let logger: Logger
    private let stats: WorkerStats
    private let onOutcome: @Sendable (DeliveryOutcome) -> Void
    private let onCapacity: @Sendable () -> Void
    private let threads = Mutex<[OwnedThread]>([])

    public init(
        settings: WorkerSettings, installation: UUID, logger: Logger, stats: WorkerStats,
        onOutcome: @escaping @Sendable (DeliveryOutcome) -> Void, onCapacity: @escaping @Sendable () -> Void
    ) {
        _ = CurlTransfer.globalInit
        let shards = max(1, settings.httpThreads)
        multis = (0..<shards).map { _ in curl_multi_init() }
        self.settings = settings
        self.installation = installation
        self.logger = logger
        self.stats = stats
        self.onOutcome = onOutcome
        self.onCapacity = onCapacity
        // Keep an idle connection for every slot, or keep-alive is lost under load.
        for multi in multis {
            herald_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, settings.httpPoolSize)
        }
    }

    deinit {
        multis.forEach { curl_multi_cleanup($0) }
    }

    public func start() {
        // Each thread may run its share of the pool; the global and per-host limits are
        // enforced across all of them under the shared lock.
        let share = (settings.httpPoolSize + multis.count - 1) / multis.count
        threads.withLock { threads in
            threads = multis.indices.map { index in
                OwnedThread(name: "herald-deliverer-\(index)") { [self] in
                    runLoop(multi: multis[index], capacity: share)
                }
            }
        }
    }

    private func wakeAll() {
        multis.forEach { curl_multi_wakeup($0) }
    }

    /// Queues jobs; they start as soon as slots are free.
    public func submit(_ jobs: [DeliveryJob]) {
        guard !jobs.isEmpty else { return }
        state.withLock { $0.queue += jobs }
        wakeAll()
    }

    /// Jobs queued plus transfers running.
    public var outstanding: Int {
        state.withLock { $0.queue.count + $0.inFlight }
    }

    public var inFlight: Int {
        state.withLock { $0.inFlight }
    }

    /// Stops taking jobs: queued ones are dropped (their leases are released by the worker),
    /// running ones get until `grace` to finish and are then aborted.
    public func shutdown(grace: Duration) async {
        let dropped = state.withLock { state in
            state.stopping = true
            state.deadline = .now + grace
            defer { state.queue.removeAll() }
            return state.queue.count
        }
        if dropped > 0 { logger.debug("dropped queued deliveries at shutdown", metadata: ["count": "\(dropped)"]) }
        wakeAll()
        for thread in threads.withLock({ $0 }) {
            await thread.join()
        }
    }

    private func runLoop(multi: UnsafeMutableRawPointer, capacity: Int) {
        var transfers: [UnsafeMutableRawPointer: CurlTransfer] = [:]
        let handles = CurlHandlePool(capacity: capacity)
        while true {
            for job in takeStartableJobs(limit: capacity - transfers.count) {
                startTransfer(job, multi: multi, handles: handles, into: &transfers)
            }
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            collectFinished(&transfers, multi: multi, handles: handles)

            let (stopping, deadline) = state.withLock { ($0.stopping, $0.deadline) }
            if stopping {
                if transfers.isEmpty { break }
                if let deadline, ContinuousClock.now >= deadline {
                    logger.warning(
                        "shutdown grace expired; aborting deliveries, their events will be delivered again",
                        metadata: ["count": "\(transfers.count)"])
                    for (handle, _) in transfers {
                        curl_multi_remove_handle(multi, handle)
                        handles.giveBack(handle)
                    }
                    let aborted = transfers.count
                    transfers.removeAll()
                    state.withLock { $0.inFlight -= aborted }
                    break
                }
            }
            var ready: Int32 = 0
            curl_multi_poll(multi, nil, 0, 1000, &ready)
        }
    }

    /// Takes queued jobs in order while global and per-host slots are free; a job whose host
    /// is full waits without blocking jobs for other hosts.
    private func takeStartableJobs(limit: Int) -> [DeliveryJob] {
        state.withLock { state in
            guard limit > 0, !state.stopping, !state.queue.isEmpty, state.inFlight < settings.httpPoolSize else {
                return []
            }
            var started: [DeliveryJob] = []
            var skipped: [Int] = []
            var index = 0
            while index < state.queue.count && state.inFlight < settings.httpPoolSize && started.count < limit {
                let job = state.queue[index]
                let hostCount = state.perHost[job.hostKey, default: 0]
                if hostCount < settings.httpPerHostLimit {
                    state.inFlight += 1
                    state.perHost[job.hostKey] = hostCount + 1
                    started.append(job)
                } else {
                    skipped.append(index)
                }
                index += 1
            }
            // Jobs whose host was full stay at the front, in order.
            let kept = skipped.map { state.queue[$0] }
            state.queue.replaceSubrange(0..<index, with: kept)
            return started
        }
    }

    private func startTransfer(
        _ job: DeliveryJob, multi: UnsafeMutableRawPointer, handles: CurlHandlePool,
        into transfers: inout [UnsafeMutableRawPointer: CurlTransfer]
    ) {
        let request = DeliveryRequest(prepared: job.prepared, timestamp: Int(Date().timeIntervalSince1970))
        guard let handle = handles.take() else {
            finish(job: job, request: request, result: .failure(.internal, message: "curl_easy_init failed"),
                   body: [], duration: .zero)
            return
        }
        let transfer = CurlTransfer(
            handle: handle, job: job, request: request, responseLimit: settings.maxResponseBytes)
        let code = curl_multi_add_handle(multi, transfer.handle)
        guard code == CURLM_OK else {
            handles.giveBack(handle)
            finish(job: job, request: request,
                   result: .failure(.internal, message: String(cString: curl_multi_strerror(code))),
                   body: [], duration: .zero)
            return
        }
        transfers[transfer.handle] = transfer
    }

    private func collectFinished(
        _ transfers: inout [UnsafeMutableRawPointer: CurlTransfer], multi: UnsafeMutableRawPointer,
        handles: CurlHandlePool
    ) {
        var left: Int32 = 0
        while let message = curl_multi_info_read(multi, &left) {
            guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle,
                let transfer = transfers.removeValue(forKey: handle)
            else { continue }
            let code = message.pointee.data.result
            curl_multi_remove_handle(multi, handle)
            let result = transfer.result(code)
            let duration = ContinuousClock.now - transfer.startedAt
            handles.giveBack(handle)
            finish(job: transfer.job, request: transfer.request, result: result, body: transfer.response,
                   duration: duration)
        }
    }

    private func finish(
        job: DeliveryJob, request: DeliveryRequest, result: AttemptResult, body: [UInt8], duration: Duration
    ) {
        let attempt = job.event.tries + 1
        let decision = job.policy.decide(attempt: attempt, result: result, now: Date())
        let milliseconds = Double(duration.components.seconds) * 1000
            + Double(duration.components.attoseconds) / 1e15
        let stored = body.prefix(settings.storedResponseBytes)
        let outcome = DeliveryOutcome(
            event: job.event, attempt: attempt, result: result, decision: decision,
            requestHeaders: request.headers,
            responseBody: body.isEmpty ? nil : String(decoding: stored, as: UTF8.self),
            durationMilliseconds: milliseconds)
        if logger.logLevel <= .debug {
            logger.debug(
                "delivery attempt finished",
                metadata: [
                    "trigger": "\(job.trigger.name)", "event": "\(request.messageID)", "attempt": "\(attempt)",
                    "result": "\(outcome.statusCode.map(String.init) ?? outcome.errorClass ?? "")",
                    "decision": "\(decision.status)", "ms": "\(Int(milliseconds))",
                ])
        }
        stats.recordDelivery(trigger: job.trigger.name, outcome: outcome)
        onOutcome(outcome)
        let capacityRestored = state.withLock { state in
            state.inFlight -= 1
            let remaining = state.perHost[job.hostKey, default: 1] - 1
            state.perHost[job.hostKey] = remaining > 0 ? remaining : nil
            return state.queue.count + state.inFlight == settings.httpPoolSize
        }
        if capacityRestored { onCapacity() }
    }
}
