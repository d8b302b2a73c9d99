import Foundation
import Logging
import ServiceLifecycle

/// Hasura's per-trigger `cleanup_config`, run by the worker: at each time a trigger's
/// `schedule` names (UTC), its delivered and failed events older than `clear_older_than`
/// hours are deleted through ``Retention``, `batch_size` rows per statement, each statement
/// limited to `timeout` seconds. Paused triggers are skipped. Several workers may run it at
/// once: the batches lock rows with SKIP LOCKED, so they share the work instead of waiting.
struct TriggerCleanupService: Service {
    struct Job: Sendable {
        var trigger: String
        var cleanup: CleanupConfig
    }

    let databaseURL: String
    let jobs: [Job]
    let logger: Logger

    /// Nil when no configured trigger has an active `cleanup_config`.
    init?(config: HeraldConfig, logger: Logger) {
        jobs = config.triggers.compactMap { trigger in
            guard let cleanup = trigger.cleanup, !cleanup.paused else { return nil }
            return Job(trigger: trigger.name, cleanup: cleanup)
        }
        guard !jobs.isEmpty else { return nil }
        databaseURL = config.database.url
        self.logger = logger
    }

    /// The jobs due at the earliest next schedule time after `now`, and that time.
    static func nextRun(_ jobs: [Job], after now: Date) -> (Date, [Job])? {
        let times = jobs.compactMap { job in job.cleanup.schedule.next(after: now).map { ($0, job) } }
        guard let earliest = times.map(\.0).min() else { return nil }
        return (earliest, times.filter { $0.0 == earliest }.map(\.1))
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown { [self] in
            var now = Date()
            while !Task.isCancelled, let next = Self.nextRun(jobs, after: now) {
                try await Task.sleep(for: .seconds(max(0, next.0.timeIntervalSinceNow)))
                for job in next.1 { await Self.clean(job, databaseURL: databaseURL, logger: logger) }
                now = next.0
            }
        }
    }

    static func clean(_ job: Job, databaseURL: String, logger: Logger) async {
        var logger = logger
        logger[metadataKey: "trigger"] = "\(job.trigger)"
        do {
            let report = try await runBlocking("herald-trigger-cleanup") {
                let connection = try PGConnection(url: databaseURL)
                try connection.execute(script: "SET statement_timeout = '\(job.cleanup.timeoutSeconds)s'")
                return try Retention(connection: connection).run(
                    olderThanSeconds: job.cleanup.clearOlderThanHours * 3600, scope: .deliveredAndFailed,
                    trigger: job.trigger, batchSize: job.cleanup.batchSize)
            }
            logger.info(
                "trigger cleanup", metadata: ["events": "\(report.events)", "invocations": "\(report.invocations)"])
        } catch {
            logger.warning("trigger cleanup failed; will run at the next scheduled time", metadata: ["error": "\(error)"])
        }
    }
}
