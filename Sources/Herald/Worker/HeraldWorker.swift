import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// `herald run`: the claimer, the delivery pool, the recorder and their helpers as services
/// of one ServiceGroup, sharing one ``FlowController``.
///
/// Services start in list order and stop in reverse, one after another, on SIGTERM/SIGINT:
/// systemd hears STOPPING=1; the claimer stops claiming; the deliverer drops what is queued
/// and lets in-flight requests finish; the recorder writes what is left and releases every
/// lease this worker still holds; the stats endpoint answers until the end. All of it shares
/// one `shutdown_grace_seconds` deadline.
public final class HeraldWorker: Sendable {
    public let config: HeraldConfig
    public let workerID: String
    public let stats: WorkerStats
    /// Opened by the stats endpoint once it listens (or at once when it is disabled).
    public let statsEndpointRunning = Gate()
    private let logger: Logger
    private let parts = Mutex<Parts?>(nil)
    private let stopping = Mutex(false)
    private let lastQueue = Mutex<QueueStats?>(nil)

    private struct Parts {
        var flow: FlowController
        var claimer: Claimer
        var deliverer: Deliverer
    }

    /// Create after bootstrapping the metrics system: metric handles are made here.
    public init(config: HeraldConfig, logger: Logger) {
        self.config = config
        self.logger = logger
        workerID = Self.makeWorkerID()
        stats = WorkerStats(metrics: HeraldMetrics(triggerNames: config.triggers.map(\.name)))
        if config.stats.listen.isEmpty { statsEndpointRunning.open() }
    }

    /// Ready while the claimer holds a live database connection; otherwise why not.
    public var readiness: (ready: Bool, reason: String) {
        if stopping.withLock({ $0 }) { return (false, "shutting down") }
        guard let claimer = parts.withLock({ $0?.claimer }) else { return (false, "starting") }
        return claimer.isConnected ? (true, "") : (false, "database unreachable")
    }

    /// Alive while the claim loop and every delivery loop keep turning, database or not.
    /// The claim loop may sit in one statement up to its statement timeout (or a connection
    /// attempt up to its connect timeout); the delivery loops never sleep more than a second.
    var isAlive: Bool {
        guard let parts = parts.withLock({ $0 }) else { return true }
        let claimLimit = Duration.seconds(EventStore.statementTimeoutSeconds + 10)
        return parts.claimer.heartbeat.isRecent(within: claimLimit) && parts.deliverer.isTurning(within: .seconds(10))
    }

    var inFlight: Int { parts.withLock { $0?.flow.inFlight } ?? 0 }

    /// The /stats document.
    public func statsJSON() -> String {
        StatsDocument(worker: self, snapshot: stats.current(inFlight: inFlight), queue: lastQueue.withLock { $0 })
            .json
    }

    /// host:pid:random, unique per process and readable in `locked_by`.
    static func makeWorkerID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        let suffix = UUID().uuidString.prefix(6).lowercased()
        return "\(host):\(ProcessInfo.processInfo.processIdentifier):\(suffix)"
    }

    /// Checks the database, then runs every service until SIGTERM/SIGINT (or until one
    /// fails, which shuts the others down gracefully and is rethrown).
    public func run(statsServer: (any Service)?) async throws {
        let config = self.config
        let (installation, orphans) = try await runBlocking("herald-preflight") { try Self.preflight(config) }
        for (trigger, count) in orphans.sorted(by: { $0.key < $1.key }) {
            // Never dropped: they wait for a config that names their trigger again.
            logger.warning(
                "pending events for a trigger not in the configuration will not be delivered by this worker",
                metadata: ["trigger": "\(trigger)", "pending": "\(count)"])
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: makeServices(installation: installation, statsServer: statsServer),
                gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger))
        logger.info(
            "herald worker started",
            metadata: [
                "worker_id": "\(workerID)", "version": "\(Herald.version)",
                "database": "\(config.database.redactedURL)", "triggers": "\(config.triggers.map(\.name))",
                "http_pool_size": "\(config.worker.httpPoolSize)", "fetch_batch_size": "\(config.worker.fetchBatchSize)",
                "fetch_interval_ms": "\(config.worker.fetchIntervalMilliseconds)",
                "lease_seconds": "\(config.worker.leaseSeconds)",
            ])
        defer { logger.info("herald worker stopped") }
        try await group.run()
    }

    /// The services in start order (they stop in reverse).
    func makeServices(installation: EventIDKey, statsServer: (any Service)?) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        let worker = config.worker
        let shutdownDeadline = ShutdownDeadline()
        let alerts = config.alerts.map { AlertDispatcher(config: $0, logger: logger) }
        let reporter = FlowNoticeReporter(
            logger: logger, metrics: stats.metrics, alert: { alerts?.emit($0) },
            openSecondsByTrigger: Dictionary(
                uniqueKeysWithValues: config.triggers.map { ($0.name, $0.protection.circuitBreaker?.openSeconds ?? 0) }))
        for trigger in config.triggers {
            stats.metrics.trigger(trigger.name)?.enabled.record(1)
            stats.metrics.trigger(trigger.name)?.circuitState.record(0)
        }
        let flow = FlowController(
            limits: FlowControl.Limits(
                poolSize: worker.httpPoolSize, perHostLimit: worker.httpPerHostLimit,
                fetchBatchSize: worker.fetchBatchSize, leaseSeconds: worker.leaseSeconds,
                recorderBacklogLimit: Recorder.backlogLimit(worker),
                pollInterval: .milliseconds(worker.fetchIntervalMilliseconds)),
            routes: Claimer.routes(config), noticeSink: { reporter.report($0) })
        let recorder = Recorder(
            databaseURL: config.database.url, workerID: workerID, settings: worker, flow: flow,
            shutdownDeadline: shutdownDeadline, logger: logger, stats: stats,
            onFailedEvents: { outcomes in outcomes.forEach { alerts?.emit($0.failedAlert) } })
        let deliverer = Deliverer(
            settings: worker, flow: flow, shutdownDeadline: shutdownDeadline, logger: logger, stats: stats,
            onOutcomes: { recorder.enqueue($0) })
        let claimer = Claimer(
            config: config, workerID: workerID, installation: installation, flow: flow, stats: stats, logger: logger,
            onTriggerStateChange: { reporter.triggerStateChanged(enabled: $0, disabled: $1) })
        parts.withLock { $0 = Parts(flow: flow, claimer: claimer, deliverer: deliverer) }

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        func add(_ service: any Service, _ name: String) {
            // A failing part (the stats address taken, say) stops the rest gracefully: in
            // flight deliveries finish, outcomes are written and leases released.
            services.append(.init(service: service, failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: name))
        }
        if let statsServer { add(statsServer, "stats-endpoint") }
        // Stopped after the recorder: failures written during the final flush are alerted.
        if let alerts { add(alerts, "alerts") }
        add(PeriodicService(interval: .seconds(10)) { [self] in await refreshQueueDepth() }, "queue-depth")
        // A partitioned log's retention drops partitions instead (partition maintenance).
        if config.retention.isEnabled, config.partitioning == nil {
            add(PeriodicService(interval: .seconds(config.retention.intervalSeconds)) { [config, logger] in
                await Self.runRetention(config, logger: logger)
            }, "retention")
        }
        if let cleanup = TriggerCleanupService(config: config, logger: logger) { add(cleanup, "trigger-cleanup") }
        if let partitions = PartitionMaintenanceService(config: config, logger: logger) { add(partitions, "partitions") }
        add(PeriodicService(interval: .seconds(worker.statsLogIntervalSeconds), immediately: false) { [self] in
            Self.logFetchStats(stats.takeInterval(inFlight: inFlight), logger: logger)
        }, "fetch-stats-log")
        add(recorder, "recorder")
        add(deliverer, "deliverer")
        add(claimer, "claimer")
        add(SystemdService(worker: self, logger: logger), "systemd")
        return services
    }

    /// Marks the worker as stopping (readiness turns false) and logs it.
    func beginStopping() {
        stopping.withLock { $0 = true }
        logger.info("herald worker stopping", metadata: ["in_flight": "\(inFlight)"])
    }

    /// Queue depth is read on an interval, not per scrape: a scrape must not cost a scan of
    /// the log. A connection of its own on a thread of its own.
    private func refreshQueueDepth() async {
        let config = self.config
        do {
            let queue = try await runBlocking("herald-queue-depth") {
                try QueueStats.read(PGConnection(url: config.database.url), configured: config.triggers.map(\.name))
            }
            stats.metrics.setQueueDepth(queue)
            // Read here, not on the claimer's thread: it scans the pending events, and a claim
            // loop that waits for it lets the pool run dry.
            let oldest = queue.triggers.compactMap(\.oldestPendingAgeSeconds).max()
            stats.setOldestPendingAge(oldest)
            stats.metrics.oldestPendingAge.record(oldest ?? 0)
            lastQueue.withLock { $0 = queue }
        } catch {
            logger.debug("queue depth refresh failed", metadata: ["error": "\(error)"])
        }
    }

    /// Deletes finished events past their retention. Each pass uses a connection of its own
    /// on a thread of its own.
    static func runRetention(_ config: HeraldConfig, logger: Logger) async {
        let retention = config.retention
        do {
            let report = try await runBlocking("herald-retention") {
                let cleanup = Retention(connection: try PGConnection(url: config.database.url))
                var report = Retention.Report()
                if let seconds = retention.deliveredAfterSeconds {
                    let part = try cleanup.run(olderThanSeconds: seconds, scope: .delivered)
                    report.events += part.events
                    report.invocations += part.invocations
                }
                if let seconds = retention.failedAfterSeconds {
                    let part = try cleanup.run(olderThanSeconds: seconds, scope: .failed)
                    report.events += part.events
                    report.invocations += part.invocations
                }
                return report
            }
            logger.info("retention cleanup", metadata: ["events": "\(report.events)", "invocations": "\(report.invocations)"])
        } catch {
            logger.warning("retention cleanup failed; will try again", metadata: ["error": "\(error)"])
        }
    }

    /// Checks the schema before starting, so a worker never runs against a database that
    /// `install-triggers` has not prepared, and reads the installation id.
    /// Also returns the pending events of triggers the configuration does not name.
    static func preflight(_ config: HeraldConfig) throws -> (EventIDKey, [String: Int]) {
        let connection = try PGConnection(url: config.database.url)
        let version = try SchemaMigrator.currentVersion(connection)
        guard version == SchemaMigrator.latestVersion else {
            throw PGError(
                code: .unexpectedResult,
                message: "schema herald is at version \(version), this herald needs \(SchemaMigrator.latestVersion): run herald install-triggers")
        }
        let orphans = try connection.query(
            """
            SELECT trigger_name, count(*) FROM herald.event_log
            WHERE status = 'pending' AND NOT (trigger_name = ANY ($1::text[])) GROUP BY trigger_name
            """, [PGArray.literal(config.triggers.map { $0.name })])
        var counts: [String: Int] = [:]
        for row in 0..<orphans.rowCount {
            counts[orphans[row, 0] ?? ""] = Int(orphans[row, 1] ?? "0") ?? 0
        }
        return (try EventStore(connection: connection).eventIDKey(), counts)
    }

    static func logFetchStats(_ snapshot: WorkerStats.Snapshot, logger: Logger) {
        logger.info(
            "fetch stats",
            metadata: [
                "fetches": "\(snapshot.fetches)", "events_claimed": "\(snapshot.eventsClaimed)",
                "empty_fetches": "\(snapshot.emptyFetches)",
                "claim_ms_mean": "\(String(format: "%.2f", snapshot.claimSecondsMean * 1000))",
                "claim_ms_max": "\(String(format: "%.2f", snapshot.claimSecondsMax * 1000))",
                "delivered": "\(snapshot.delivered)", "retried": "\(snapshot.retried)", "failed": "\(snapshot.failed)",
                "in_flight": "\(snapshot.inFlight)",
                "oldest_pending_age_s": "\(snapshot.oldestPendingAgeSeconds.map { String(format: "%.1f", $0) } ?? "none")",
                "recorder_errors": "\(snapshot.recorderErrors)",
                "lease_expired_drops": "\(snapshot.leaseExpiredDrops)",
                "dropped_outcomes": "\(snapshot.droppedOutcomes)",
            ])
    }
}

/// Runs `body` every `interval` until graceful shutdown.
struct PeriodicService: Service {
    let interval: Duration
    var immediately = true
    let body: @Sendable () async -> Void

    init(interval: Duration, immediately: Bool = true, _ body: @escaping @Sendable () async -> Void) {
        self.interval = interval
        self.immediately = immediately
        self.body = body
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown { [self] in
            if immediately { await body() }
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await body()
            }
        }
    }
}
