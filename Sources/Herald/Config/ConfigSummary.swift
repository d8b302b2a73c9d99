/// A human-readable account of a configuration with every secret left out: what
/// `check-config` prints and what the worker logs at start.
public enum ConfigSummary {
    public static func text(for config: HeraldConfig) -> String {
        var lines = ["config: \(config.file)"]
        if !config.usesSourcesList {
            let origin = config.database.urlOrigin.isEmpty ? "" : " (from \(config.database.urlOrigin))"
            lines.append("database: \(config.database.redactedURL)\(origin)")
        }
        let worker = config.worker
        lines.append(
            "worker: http_pool_size=\(worker.httpPoolSize) http_per_host_limit=\(worker.httpPerHostLimit)"
                + " fetch_batch_size=\(worker.fetchBatchSize) fetch_interval_ms=\(worker.fetchIntervalMilliseconds)"
                + " lease_seconds=\(worker.leaseSeconds) shutdown_grace_seconds=\(worker.shutdownGraceSeconds)")
        if case .derived(let from, let timeout) = worker.leaseOrigin {
            lines.append(
                "  lease_seconds derived: \(worker.leaseSeconds) = twice the longest timeout (\(timeout)s, \(from));"
                    + " set worker.lease_seconds to choose it")
        }
        lines.append("stats: \(config.stats.listen.isEmpty ? "disabled" : config.stats.listen)")
        if !config.stats.listen.isEmpty {
            lines.append(
                "  auth: \(config.stats.bearerToken == nil ? "none" : "bearer token from $\(config.stats.bearerTokenEnv)")"
                    + (config.console.enabled ? ", console at /console" : ", console disabled")
                    + (config.console.readOnly ? " (read-only)" : ""))
        }
        if config.usesSourcesList {
            lines.append("sources: \(config.sources.count)")
            for source in config.sources {
                let eventTriggers = source.triggers.filter(\.isEventTrigger)
                lines.append("source \(source.name): \(source.database.redactedURL), \(eventTriggers.count) triggers")
                lines += eventTriggers.flatMap { triggerLines($0).map { "  " + $0 } }
            }
        } else {
            let eventTriggers = config.triggers.filter(\.isEventTrigger)
            lines.append("triggers: \(eventTriggers.count)")
            lines += eventTriggers.flatMap(triggerLines)
        }
        let cron = config.cronTriggers
        if !cron.isEmpty {
            lines.append("cron triggers: \(cron.count)\(config.usesSourcesList ? " (in source \(config.sources[0].name))" : "")")
            lines += cron.flatMap(triggerLines)
        }
        lines.append(retentionLine(config.retention))
        if let partitioning = config.partitioning {
            lines.append(
                "partitioning: \(DurationText.setting(seconds: partitioning.intervalSeconds)) partitions,"
                    + " \(partitioning.premake) made ahead; retention drops whole partitions")
        }
        if let alerts = config.alerts {
            lines.append(
                "alerts: \(alerts.displayWebhook), digest every \(alerts.digestIntervalSeconds)s"
                    + (alerts.signing.map { ", \($0)" } ?? ""))
        }
        return lines.joined(separator: "\n")
    }

    /// What is deleted and when: a log that grows without bound is worth seeing before it fills a disk.
    static func retentionLine(_ retention: RetentionSettings) -> String {
        guard retention.isEnabled else {
            return "retention: off (finished events are kept; set retention.delivered_after and failed_after to delete them)"
        }
        func age(_ seconds: Int?) -> String { seconds.map { "after \(DurationText.setting(seconds: $0))" } ?? "kept" }
        return "retention: delivered \(age(retention.deliveredAfterSeconds)), failed \(age(retention.failedAfterSeconds)),"
            + " checked every \(DurationText.setting(seconds: retention.intervalSeconds))"
    }

    private static func triggerLines(_ trigger: TriggerConfig) -> [String] {
        var lines: [String] = []
        if let scheduled = trigger.schedule, let schedule = scheduled.cronSchedule {
            lines.append(
                "  \(trigger.name): '\(schedule)' UTC, tolerance \(scheduled.toleranceSeconds)s, payload \(scheduled.payloadJSON.prefix(80))")
        } else {
            let operations = CaptureOperation.allCases.filter { trigger.spec(for: $0) != nil }.map(\.rawValue)
                + (trigger.enableManual ? ["manual"] : [])
            lines.append("  \(trigger.name) on \(trigger.table): \(operations.joined(separator: ", "))")
        }
        lines.append("    webhook: \(trigger.displayWebhook)")
        lines.append(
            "    retries: \(trigger.retry.numRetries) every \(trigger.retry.intervalSeconds)s (\(trigger.backoff.strategy)"
                + (trigger.backoff.strategy == .exponential ? ", max \(trigger.backoff.maxIntervalSeconds)s" : "")
                + "), timeout \(trigger.retry.timeoutSeconds)s")
        for header in trigger.headers {
            lines.append("    header \(header.name): \(header.displayValue)")
        }
        if let signing = trigger.signing {
            lines.append("    \(signing)")
        }
        if let transform = trigger.requestTransform { lines.append("    request_transform: \(transform.summary)") }
        if let batch = trigger.batch { lines.append("    \(batch.description)") }
        if let filter = trigger.filter {
            for operation in CaptureOperation.allCases where trigger.spec(for: operation) != nil {
                guard let expression = filter.expressions[operation] else { continue }
                lines.append("    filter (\(operation.rawValue)): \(expression.source)")
            }
        }
        if let comment = trigger.comment { lines.append("    comment: \(comment)") }
        if trigger.triggerOnReplication { lines.append("    fires on replicated rows too (trigger_on_replication)") }
        if trigger.createdAtFormat == .hasura { lines.append("    created_at in Hasura's form (payload_compat)") }
        if let cleanup = trigger.cleanup {
            lines.append(
                "    cleanup: '\(cleanup.schedule)' UTC, finished events older than \(cleanup.clearOlderThanHours)h,"
                    + " \(cleanup.batchSize) per batch\(cleanup.paused ? " (paused)" : "")")
        }
        let protection = trigger.protection
        if let rate = protection.rateLimit {
            lines.append("    rate limit: \(rate.perSecond)/s, burst \(rate.burst)\(rate.shared ? ", shared" : "")")
        }
        lines.append(
            "    circuit breaker: "
                + (protection.circuitBreaker.map {
                    "ratio \($0.failureRatio), min \($0.minimumRequests), window \($0.windowSeconds)s, open \($0.openSeconds)s"
                } ?? "off") + "; on 410: \(protection.onGone.rawValue)")
        return lines
    }
}
