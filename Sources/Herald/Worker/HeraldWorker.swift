import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// `herald run`: per source (database) a claimer, a recorder and their periodic jobs; one
/// delivery pool for all; every part a service of one ServiceGroup, sharing one
/// ``FlowController``. A source whose database is down only stops its own claimer and
/// recorder (they retry with backoff); the others keep delivering.
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
    /// The last queue read of each source.
    private let lastQueue = Mutex<[String: QueueStats]>([:])
    /// Where each source's database and the configuration disagree, as read at start.
    private let drift = Mutex<[String: TriggerDrift]>([:])
    /// Rung on every capture NOTIFY a claimer hears: pull consumers' long polls wait on it.
    public let notificationBell = NotificationBell()
    /// Stream clients connected to this worker's listener, per trigger.
    public let streamClients = StreamClients()
    /// Where events that failed for good are told (log and alert), once the worker runs:
    /// the pull API's receives and nacks fail events too.
    private let failedEventsSink = Mutex<FailedEventsSink?>(nil)

    private struct Parts {
        var flow: FlowController
        var claimers: [Claimer]
        var deliverer: Deliverer
        /// Makes a source's claimer and recorder (for sources that join while running).
        var factory: SourcePartsFactory
        var lateClaimers: LateServices
        var lateRecorders: LateServices
    }

    /// Recorders of sources that joined while running, by source: outcomes of their events
    /// are routed here when the recorders made at the start do not know the source.
    private let lateRecorders = LateRecorders()
    /// Citus worker nodes removed from the cluster while running: their claimers go on
    /// (their logs may still hold events), but their readiness no longer counts.
    private let removedSources = Mutex<Set<String>>([])

    /// One source's state for /readyz and /stats.
    public struct SourceReadiness: Sendable, Equatable {
        public var source: String
        public var ready: Bool
        /// Why not, when not.
        public var problem: String
    }

    /// Create after bootstrapping the metrics system: metric handles are made here.
    public init(config: HeraldConfig, logger: Logger) {
        self.config = config
        self.logger = logger
        workerID = Self.makeWorkerID()
        stats = WorkerStats(
            metrics: HeraldMetrics(
                triggers: config.triggersBySource.map(\.ref),
                labelsSources: config.usesSourcesList))
        if config.stats.listen.isEmpty { statsEndpointRunning.open() }
    }

    /// Each source's claimer: ready while it holds a live connection to its database.
    public var sourceReadiness: [SourceReadiness] {
        let claimers = parts.withLock { $0?.claimers } ?? []
        guard !claimers.isEmpty else {
            return config.sources.map { SourceReadiness(source: $0.name, ready: false, problem: "starting") }
        }
        let removed = removedSources.withLock { $0 }
        return claimers.filter { !removed.contains($0.source) }.map {
            SourceReadiness(source: $0.source, ready: $0.isConnected, problem: $0.problem)
        }
    }

    /// Ready while at least one source's claimer holds a live database connection (a worker
    /// that can deliver for one database is worth keeping); otherwise why not.
    public var readiness: (ready: Bool, reason: String) {
        if stopping.withLock({ $0 }) { return (false, "shutting down") }
        guard parts.withLock({ $0 }) != nil else { return (false, "starting") }
        let sources = sourceReadiness
        if sources.contains(where: \.ready) { return (true, "") }
        if sources.count == 1 { return (false, sources[0].problem) }
        return (false, "no source reachable (" + sources.map { "\($0.source): \($0.problem)" }.joined(separator: "; ") + ")")
    }

    /// Each source's disagreements between configuration and database, read at start.
    public var triggerDrift: [String: TriggerDrift] { drift.withLock { $0 } }

    /// Keeps a source's drift for /readyz and the metric, and warns once per disagreement:
    /// the worker runs anyway (the triggers that are right deliver), but an operator must act.
    fileprivate func record(_ found: TriggerDrift, source: String, logger: Logger) {
        drift.withLock { $0[source] = found }
        stats.metrics.setTriggerDrift(found, source: source)
        for finding in found.findings {
            logger.warning(
                "configuration and database disagree: \(finding.line)",
                metadata: ["trigger": "\(finding.trigger)", "table": "\(finding.table)", "drift": "\(finding.kind.rawValue)"])
        }
    }

    /// Brings `herald_ready` and `herald_source_ready{source}` up to date (before a scrape).
    func recordReadiness() {
        stats.metrics.ready.record(readiness.ready ? 1 : 0)
        for source in sourceReadiness { stats.metrics.setSourceReady(source.source, source.ready) }
        stats.metrics.record(ProcessMemory.current())
    }

    /// Alive while the claim loop and every delivery loop keep turning, database or not.
    /// The claim loop may sit in one statement up to its statement timeout (or a connection
    /// attempt up to its connect timeout); the delivery loops never sleep more than a second.
    var isAlive: Bool {
        guard let parts = parts.withLock({ $0 }) else { return true }
        let claimLimit = Duration.seconds(EventStore.statementTimeoutSeconds + 10)
        return parts.claimers.allSatisfy { $0.heartbeat.isRecent(within: claimLimit) }
            && parts.deliverer.isTurning(within: .seconds(10))
    }

    var inFlight: Int { parts.withLock { $0?.flow.inFlight } ?? 0 }

    /// The /stats document.
    public func statsJSON() -> String {
        StatsDocument(worker: self, snapshot: stats.current(inFlight: inFlight), queues: lastQueue.withLock { $0 })
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
        var installations: [String: EventIDKey] = [:]
        for source in config.sources {
            let scoped = config.scoped(to: source)
            let logger = logger(for: source)
            do {
                let (installation, orphans, drift) = try await runBlocking("herald-preflight") {
                    try Self.preflight(scoped, logger: logger)
                }
                installations[source.name] = installation
                Self.warnAboutOrphans(orphans, logger: logger)
                record(drift, source: source.name, logger: logger)
            } catch where config.sources.count > 1 {
                // One database down must not keep the others from being served: its claimer
                // checks it again when it connects, and /readyz says why it waits.
                logger.error(
                    "source cannot be checked; its claimer keeps trying, the other sources start",
                    metadata: ["error": "\(error)"])
            }
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: makeServices(installations: installations, statsServer: statsServer),
                gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger))
        logger.info(
            "herald worker started",
            metadata: [
                "worker_id": "\(workerID)", "version": "\(Herald.version)",
                "sources": "\(config.sources.map { "\($0.name)=\($0.database.redactedURL)" })",
                "triggers": "\(config.triggersBySource.map(\.ref.description))",
                "http_pool_size": "\(config.worker.httpPoolSize)", "fetch_batch_size": "\(config.worker.fetchBatchSize)",
                "fetch_interval_ms": "\(config.worker.fetchIntervalMilliseconds)",
                "lease_seconds": "\(config.worker.leaseSeconds)",
            ])
        defer { logger.info("herald worker stopped") }
        try await group.run()
    }

    /// The services in start order (they stop in reverse).
    func makeServices(installations: [String: EventIDKey], statsServer: (any Service)?)
        -> [ServiceGroupConfiguration.ServiceConfiguration]
    {
        let worker = config.worker
        let shutdownDeadline = ShutdownDeadline()
        let alerts = config.alerts.map { AlertDispatcher(config: $0, redactor: Redactor(config: config), logger: logger) }
        let reporter = FlowNoticeReporter(
            logger: logger, metrics: stats.metrics, alert: { alerts?.emit($0) },
            breakers: Dictionary(
                uniqueKeysWithValues: config.triggersBySource.compactMap { ref, trigger in
                    trigger.protection.circuitBreaker.map { (ref, $0) }
                }))
        for source in config.sources { stats.metrics.setSourceReady(source.name, false) }
        for (ref, _) in config.triggersBySource {
            stats.metrics.trigger(ref)?.enabled.record(1)
            stats.metrics.trigger(ref)?.circuitState.record(0)
        }
        let flow = FlowController(
            limits: FlowControl.Limits(
                poolSize: worker.httpPoolSize, perHostLimit: worker.httpPerHostLimit,
                fetchBatchSize: worker.fetchBatchSize, leaseSeconds: worker.leaseSeconds,
                recorderBacklogLimit: Recorder.backlogLimit(worker),
                pollInterval: .milliseconds(worker.fetchIntervalMilliseconds)),
            routes: Claimer.routes(config), noticeSink: { reporter.report($0) })
        var recorders: [String: Recorder] = [:]
        var claimers: [Claimer] = []
        let failureLog = FinalFailureLog(logger: logger)
        let factory = SourcePartsFactory(
            worker: self, flow: flow, reporter: reporter, shutdownDeadline: shutdownDeadline,
            onFailedEvents: { outcomes in
                failureLog.report(outcomes, now: .now)
                outcomes.forEach { alerts?.emit($0.failedAlert) }
            })
        for source in config.sources {
            recorders[source.name] = factory.recorder(for: source)
            // Pull consumers serve the single-database form only: its source is the default one.
            if source.name == SourceConfig.defaultName {
                let sink = FailedEventsSink { outcomes in
                    failureLog.report(outcomes, now: .now)
                    outcomes.forEach { alerts?.emit($0.failedAlert) }
                }
                failedEventsSink.withLock { $0 = sink }
            }
            claimers.append(factory.claimer(for: source, installation: installations[source.name]))
        }
        let deliverer = Deliverer(
            settings: worker, flow: flow, shutdownDeadline: shutdownDeadline, logger: logger, stats: stats,
            onOutcomes: { [recorders, lateRecorders] in Self.route($0, to: recorders, late: lateRecorders) })
        let lateClaimers = LateServices(logger: logger)
        let lateRecorderServices = LateServices(logger: logger)
        parts.withLock {
            $0 = Parts(
                flow: flow, claimers: claimers, deliverer: deliverer, factory: factory, lateClaimers: lateClaimers,
                lateRecorders: lateRecorderServices)
        }

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        func add(_ service: any Service, _ name: String) {
            // A failing part (the stats address taken, say) stops the rest gracefully: in
            // flight deliveries finish, outcomes are written and leases released.
            services.append(.init(service: service, failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: name))
        }
        if let statsServer { add(statsServer, "stats-endpoint") }
        // Stopped after the recorder: failures written during the final flush are alerted.
        if let alerts { add(alerts, "alerts") }
        for source in config.sources {
            let scoped = config.scoped(to: source)
            let logger = logger(for: source)
            let suffix = config.usesSourcesList ? "-\(source.name)" : ""
            for (service, name) in periodicServices(for: source) { add(service, name + suffix) }
            if let cleanup = TriggerCleanupService(config: scoped, logger: logger) {
                add(cleanup, "trigger-cleanup\(suffix)")
            }
            // A Citus worker node's log is not partitioned (install-triggers converts the
            // coordinator's).
            if source.citusNode == nil, let partitions = PartitionMaintenanceService(
                config: scoped, logger: logger, sourceLabel: config.usesSourcesList ? source.name : nil)
            {
                add(partitions, "partitions\(suffix)")
            }
        }
        // Free pages the allocator keeps would otherwise add up to a slow RSS climb over months.
        add(PeriodicService(interval: .seconds(30), immediately: false) { ProcessMemory.releaseFreePages() }, "memory-trim")
        add(PeriodicService(interval: .seconds(worker.statsLogIntervalSeconds), immediately: false) { [self] in
            Self.logFetchStats(stats.takeInterval(inFlight: inFlight), logger: logger)
        }, "fetch-stats-log")
        for (name, recorder) in recorders.sorted(by: { $0.key < $1.key }) {
            add(recorder, config.usesSourcesList ? "recorder-\(name)" : "recorder")
        }
        add(lateRecorderServices, "late-recorders")
        add(deliverer, "deliverer")
        for claimer in claimers { add(claimer, config.usesSourcesList ? "claimer-\(claimer.source)" : "claimer") }
        add(lateClaimers, "late-claimers")
        if let watch = CitusNodeWatch(worker: self, config: config, logger: logger) { add(watch, "citus-nodes") }
        if let first = config.sources.first {
            add(
                CronScheduler(config: config.scoped(to: first), flow: flow, metrics: stats.metrics, logger: logger(for: first)),
                "scheduler")
        }
        add(SystemdService(worker: self, logger: logger), "systemd")
        return services
    }

    /// The worker's logger, with the source named when the configuration lists sources.
    fileprivate func logger(for source: SourceConfig) -> Logger {
        var logger = self.logger
        if config.usesSourcesList { logger[metadataKey: "source"] = "\(source.name)" }
        return logger
    }

    /// Marks the worker as stopping (readiness turns false) and logs it.
    func beginStopping() {
        stopping.withLock { $0 = true }
        logger.info("herald worker stopping", metadata: ["in_flight": "\(inFlight)"])
    }

    /// Outcomes go to the recorder of the source they were claimed from.
    static func route(_ outcomes: [DeliveryOutcome], to recorders: [String: Recorder], late: LateRecorders) {
        if recorders.count == 1, late.isEmpty, let only = recorders.first?.value {
            only.enqueue(outcomes)
            return
        }
        for (source, part) in Dictionary(grouping: outcomes, by: \.event.source) {
            (recorders[source] ?? late.recorder(for: source))?.enqueue(part)
        }
    }

    /// A source's periodic jobs: queue depth, and row retention unless partitions are
    /// dropped instead (a Citus worker node's log is never partitioned: install-triggers
    /// converts the coordinator's).
    private func periodicServices(for source: SourceConfig) -> [(any Service, String)] {
        let scoped = config.scoped(to: source)
        let logger = logger(for: source)
        var services: [(any Service, String)] = [
            (PeriodicService(interval: .seconds(10)) { [self, logger] in await refreshQueueDepth(scoped, logger: logger) }, "queue-depth")
        ]
        let partitioned = config.partitioning != nil && source.citusNode == nil
        if config.retention.isEnabled, !partitioned {
            services.append(
                (PeriodicService(interval: .seconds(config.retention.intervalSeconds)) { [logger] in
                    await Self.runRetention(scoped, logger: logger)
                }, "retention"))
        }
        return services
    }

    /// A Citus worker node found while running (``CitusNodeWatch``): its triggers join flow
    /// control and the metrics, and its claimer, recorder and periodic jobs start, as if it
    /// had been there at the start. False while the worker is not running yet.
    @discardableResult
    func addSource(_ source: SourceConfig) -> Bool {
        guard let parts = parts.withLock({ $0 }) else { return false }
        let scoped = config.scoped(to: source)
        // Also for trigger cleanup (Hasura's cleanup_config), as on the nodes found at start.
        if let cleanup = TriggerCleanupService(config: scoped, logger: logger(for: source)) {
            parts.lateClaimers.start(cleanup)
        }
        stats.metrics.add(triggers: source.triggers.map { TriggerRef(source: source.name, name: $0.name) })
        parts.flow.addSource(routes: Claimer.routes(scoped))
        let recorder = parts.factory.recorder(for: source)
        lateRecorders.add(recorder, source: source.name)
        parts.lateRecorders.start(recorder)
        let claimer = parts.factory.claimer(for: source, installation: nil)
        self.parts.withLock { $0?.claimers.append(claimer) }
        parts.lateClaimers.start(claimer)
        for (service, _) in periodicServices(for: source) { parts.lateClaimers.start(service) }
        return true
    }

    /// A Citus worker node left the cluster: its claimer goes on while its log is reachable
    /// (events captured there before the removal are still delivered), but readiness no
    /// longer waits for it.
    func sourceRemoved(_ name: String) {
        removedSources.withLock { _ = $0.insert(name) }
    }

    /// Queue depth is read on an interval, not per scrape: a scrape must not cost a scan of
    /// the log. A connection of its own on a thread of its own, per source.
    private func refreshQueueDepth(_ config: HeraldConfig, logger: Logger) async {
        let source = config.sources.first?.name ?? SourceConfig.defaultName
        do {
            let queue = try await runBlocking("herald-queue-depth") {
                try QueueStats.readBounded(PGConnection(url: config.database.url), configured: config.listedTriggerNames)
            }
            stats.metrics.setQueueDepth(queue, source: source)
            stats.metrics.setConsumerLag(queue, consumers: config.consumers, triggers: config.triggers)
            // Read here, not on the claimer's thread: it scans the pending events, and a claim
            // loop that waits for it lets the pool run dry.
            let all = lastQueue.withLock { last in
                last[source] = queue
                return last
            }
            let oldest = all.values.flatMap(\.triggers).compactMap(\.oldestPendingAgeSeconds).max()
            stats.setOldestPendingAge(oldest)
            stats.metrics.oldestPendingAge.record(oldest ?? 0)
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
    /// Also returns the pending events of triggers the configuration does not name, and
    /// where the installed capture triggers and the configuration disagree.
    static func preflight(_ config: HeraldConfig, logger: Logger) throws -> (EventIDKey, [String: Int], TriggerDrift) {
        let connection = try PGConnection(url: config.database.url)
        if let node = config.sources.first?.citusNode { try CitusLayout.check(connection, is: node) }
        if let problem = SchemaCheck.problem(version: try SchemaMigrator.currentVersion(connection)) {
            throw PGError(code: .schemaNotReady, message: problem)
        }
        let orphans = try connection.query(
            """
            SELECT trigger_name, count(*) FROM herald.event_log
            WHERE status = 'pending' AND NOT (trigger_name = ANY ($1::text[])) GROUP BY trigger_name
            """, [PGArray.literal(config.triggers.map { $0.name })])
        var counts: [String: Int] = [:]
        for row in 0..<orphans.rowCount {
            counts[try orphans.decode(String.self, row: row, column: 0)] =
                try orphans.decode(Int.self, row: row, column: 1)
        }
        // A Citus worker node's capture triggers are the shards' (Citus copies them from the
        // coordinator, whose source reports their drift).
        let drift =
            config.sources.first?.citusNode == nil
            ? try TriggerInstaller(config: config, logger: logger).drift(connection) : TriggerDrift()
        return (try EventStore(connection: connection).eventIDKey(), counts, drift)
    }

    /// Pending events of triggers the configuration does not name are never dropped: they
    /// wait for a config that names their trigger again.
    static func warnAboutOrphans(_ orphans: [String: Int], logger: Logger) {
        for (trigger, count) in orphans.sorted(by: { $0.key < $1.key }) {
            logger.warning(
                "pending events for a trigger not in the configuration will not be delivered by this worker",
                metadata: ["trigger": "\(trigger)", "pending": "\(count)"])
        }
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

/// Makes a source's claimer and recorder, wired to the worker's shared parts: at the start
/// for every configured source, and later for a Citus worker node added to the cluster.
struct SourcePartsFactory: Sendable {
    let worker: HeraldWorker
    let flow: FlowController
    let reporter: FlowNoticeReporter
    let shutdownDeadline: ShutdownDeadline
    let onFailedEvents: @Sendable ([DeliveryOutcome]) -> Void

    func recorder(for source: SourceConfig) -> Recorder {
        Recorder(
            databaseURL: source.database.url, source: source.name, workerID: worker.workerID, settings: worker.config.worker,
            flow: flow, shutdownDeadline: shutdownDeadline, logger: worker.logger(for: source), stats: worker.stats,
            onFailedEvents: onFailedEvents)
    }

    func claimer(for source: SourceConfig, installation: EventIDKey?) -> Claimer {
        let logger = worker.logger(for: source)
        let hasConsumers = !worker.config.consumers.isEmpty
        return Claimer(
            config: worker.config.scoped(to: source), workerID: worker.workerID, installation: installation, flow: flow,
            stats: worker.stats, logger: logger,
            onTriggerStateChange: { [reporter] in
                reporter.triggerStateChanged(source: source.name, enabled: $0, disabled: $1)
            },
            onDrift: { [worker] in worker.record($0, source: source.name, logger: logger) },
            onNotification: { [bell = worker.notificationBell] in bell.ring() },
            notificationsShared: { [streamClients = worker.streamClients] in
                // Pull consumers and stream clients are woken by what the claimer hears.
                hasConsumers || streamClients.hasClients
            })
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

extension HeraldWorker {
    /// Logs and alerts events that failed for good outside the recorder (pull consumers).
    func reportFailedEvents(_ outcomes: [DeliveryOutcome]) {
        guard !outcomes.isEmpty, let sink = failedEventsSink.withLock({ $0 }) else { return }
        sink.report(outcomes)
    }
}

/// Held as an object (see ``DeliveryWake``): a closure copied out of a lock leaked its context.
final class FailedEventsSink: Sendable {
    let report: @Sendable ([DeliveryOutcome]) -> Void

    init(_ report: @escaping @Sendable ([DeliveryOutcome]) -> Void) { self.report = report }
}
