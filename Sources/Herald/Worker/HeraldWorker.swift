import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// `herald run`: the claimer, the delivery pool and the recorder as one service.
///
/// Shutdown order (SIGTERM/SIGINT through the ServiceGroup): stop claiming; let in-flight
/// requests finish for up to `shutdown_grace_seconds`; flush the recorder; release every
/// lease this worker still holds so other workers can take those events at once.
public final class HeraldWorker: Service {
    public let config: HeraldConfig
    public let workerID: String
    public let stats: WorkerStats
    /// Opened by the stats endpoint once it listens (or at once when it is disabled).
    public let statsEndpointRunning = Gate()
    private let logger: Logger
    private let running = Mutex<(claimer: Claimer?, deliverer: Deliverer?, stopping: Bool)>((nil, nil, false))
    private let lastQueue = Mutex<QueueStats?>(nil)

    /// Create after bootstrapping the metrics system: metric handles are made here.
    public init(config: HeraldConfig, logger: Logger) {
        self.config = config
        self.logger = logger
        workerID = Self.makeWorkerID()
        stats = WorkerStats(metrics: HeraldMetrics(triggerNames: config.triggers.map(\.name)))
        if config.stats.listen.isEmpty { statsEndpointRunning.open() }
    }

    /// Ready while the claimer runs with a live database connection; otherwise why not.
    public var readiness: (ready: Bool, reason: String) {
        let (claimer, stopping) = running.withLock { ($0.claimer, $0.stopping) }
        if stopping { return (false, "shutting down") }
        guard let claimer else { return (false, "starting") }
        return claimer.isHealthy ? (true, "") : (false, "database unreachable")
    }

    /// The /stats document.
    public func statsJSON() -> String {
        let inFlight = running.withLock { $0.deliverer?.inFlight } ?? 0
        return StatsDocument(worker: self, snapshot: stats.current(inFlight: inFlight), queue: lastQueue.withLock { $0 })
            .json
    }

    /// host:pid:random, unique per process and readable in `locked_by`.
    static func makeWorkerID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        let suffix = UUID().uuidString.prefix(6).lowercased()
        return "\(host):\(ProcessInfo.processInfo.processIdentifier):\(suffix)"
    }

    public func run() async throws {
        let config = self.config
        let (installation, orphans) = try await runBlocking("herald-preflight") { try Self.preflight(config) }
        for (trigger, count) in orphans.sorted(by: { $0.key < $1.key }) {
            // Never dropped: they wait for a config that names their trigger again.
            logger.warning(
                "pending events for a trigger not in the configuration will not be delivered by this worker",
                metadata: ["trigger": "\(trigger)", "pending": "\(count)"])
        }

        let recorder = Recorder(
            databaseURL: config.database.url, workerID: workerID, settings: config.worker, logger: logger, stats: stats)
        let claimerBox = ClaimerBox()
        let deliverer = Deliverer(
            settings: config.worker, installation: installation, logger: logger, stats: stats,
            onOutcome: { recorder.enqueue($0) }, onCapacity: { claimerBox.claimer?.capacityAvailable() })
        let claimer = Claimer(
            config: config, workerID: workerID, installation: installation, deliverer: deliverer, recorder: recorder,
            stats: stats, logger: logger)
        claimerBox.claimer = claimer

        recorder.start()
        deliverer.start()
        claimer.start()
        running.withLock {
            $0.claimer = claimer
            $0.deliverer = deliverer
        }
        logger.info(
            "herald worker started",
            metadata: [
                "worker_id": "\(workerID)", "version": "\(Herald.version)",
                "database": "\(config.database.redactedURL)", "triggers": "\(config.triggers.map(\.name))",
                "http_pool_size": "\(config.worker.httpPoolSize)", "fetch_batch_size": "\(config.worker.fetchBatchSize)",
                "fetch_interval_ms": "\(config.worker.fetchIntervalMilliseconds)",
                "lease_seconds": "\(config.worker.leaseSeconds)",
            ])

        let notifier = SystemdNotifier()
        await statsEndpointRunning.wait()
        if Task.isCancelled {
            // The group is failing (e.g. the stats address is taken): stop what was started.
            await claimer.shutdown()
            await deliverer.shutdown(grace: .zero)
            await recorder.shutdown(timeout: .seconds(config.worker.shutdownGraceSeconds))
            throw CancellationError()
        }
        notifier.ready()
        let queueTask = Task { [self, stats, logger] in
            // Queue depth is read on an interval, not per scrape: a scrape must not cost a
            // scan of the log.
            while !Task.isCancelled {
                do {
                    let queue = try await runBlocking("herald-queue-depth") {
                        try QueueStats.read(
                            PGConnection(url: config.database.url), configured: config.triggers.map(\.name))
                    }
                    stats.metrics.setQueueDepth(queue)
                    self.lastQueue.withLock { $0 = queue }
                } catch {
                    logger.debug("queue depth refresh failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .seconds(10))
            }
        }
        let retentionTask = Task { [logger] in
            await Self.runRetentionSchedule(config, logger: logger)
        }
        let watchdogTask = Task { [stats] in
            let interval = notifier.watchdogInterval ?? .seconds(5)
            while !Task.isCancelled {
                // Only a claimer that is connected and turning proves the worker is alive;
                // a stuck one stops the pings and systemd restarts the service.
                if claimer.isHealthy { notifier.watchdog() }
                let snapshot = stats.current(inFlight: deliverer.inFlight)
                notifier.status(
                    "delivered \(snapshot.delivered), retried \(snapshot.retried), failed \(snapshot.failed), "
                        + "in flight \(snapshot.inFlight)\(claimer.isHealthy ? "" : ", database unreachable")")
                try? await Task.sleep(for: interval)
            }
        }
        let statsTask = Task { [stats, logger] in
            let interval = Duration.seconds(config.worker.statsLogIntervalSeconds)
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { break }
                Self.logFetchStats(stats.takeInterval(inFlight: deliverer.inFlight), logger: logger)
            }
        }

        try? await gracefulShutdown()
        running.withLock { $0.stopping = true }
        notifier.stopping()
        queueTask.cancel()
        logger.info("herald worker stopping", metadata: ["in_flight": "\(deliverer.inFlight)"])
        statsTask.cancel()
        watchdogTask.cancel()
        retentionTask.cancel()
        let grace = Duration.seconds(config.worker.shutdownGraceSeconds)
        await claimer.shutdown()
        await deliverer.shutdown(grace: grace)
        await recorder.shutdown(timeout: grace)
        let workerID = self.workerID
        let released = try? await runBlocking("herald-release") {
            try EventStore(connection: PGConnection(url: config.database.url)).releaseLeases(workerID: workerID)
        }
        logger.info("herald worker stopped", metadata: ["released_leases": "\(released.map(String.init) ?? "unknown")"])
    }

    /// Deletes finished events past their retention, every `retention.interval`, while the
    /// worker runs. Each pass uses a connection of its own on a thread of its own.
    static func runRetentionSchedule(_ config: HeraldConfig, logger: Logger) async {
        let retention = config.retention
        guard retention.isEnabled else { return }
        while !Task.isCancelled {
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
                logger.info(
                    "retention cleanup", metadata: ["events": "\(report.events)", "invocations": "\(report.invocations)"])
            } catch {
                logger.warning("retention cleanup failed; will try again", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(retention.intervalSeconds))
        }
    }

    /// Checks the schema before starting, so a worker never runs against a database that
    /// `install-triggers` has not prepared, and reads the installation id.
    /// Also returns the pending events of triggers the configuration does not name.
    static func preflight(_ config: HeraldConfig) throws -> (UUID, [String: Int]) {
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
        return (try EventStore(connection: connection).installationID(), counts)
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
            ])
    }
}

/// Breaks the construction cycle between deliverer (which signals capacity) and claimer
/// (which feeds the deliverer): set once before either starts.
private final class ClaimerBox: @unchecked Sendable {
    var claimer: Claimer?
}
