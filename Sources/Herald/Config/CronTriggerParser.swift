import Foundation

/// Reads Hasura's cron triggers (`cron_triggers.yaml` of a metadata export, or `cron_triggers:`
/// in Herald's file) into scheduled ``TriggerConfig``s that the delivery engine serves like
/// any trigger: retries, signing, rate limits, breakers, alerts, stats, metrics, console.
extension TriggerParser {
    static let cronTriggerKeys = Set([
        "name", "webhook", "webhook_from_env", "schedule", "payload", "headers", "retry_conf", "comment",
        "include_in_metadata", "replace",
        // Herald extensions, as on event triggers.
        "retry_backoff", "signing",
    ]).union(protectionKeys)

    /// Every cron trigger of `list`, and the problems of those that did not load, so all are
    /// reported in one run. `taken` holds the event triggers' names: the two kinds share one
    /// log and one namespace of trigger names.
    func parseCronTriggers(_ list: ConfigNode, taken: [String: ConfigLocation]) throws(ConfigError)
        -> ([TriggerConfig], [ConfigError])
    {
        var triggers: [TriggerConfig] = []
        var problems: [ConfigError] = []
        var seen = taken
        for element in try list.resolvingInclude().elements() {
            do throws(ConfigError) {
                let node = try element.resolvingInclude()
                var trigger = try parseCronTrigger(node)
                if let first = seen[trigger.name] {
                    let where_ = " (first defined at \(first.file)\(first.line.map { ":\($0)" } ?? ""))"
                    throw node.error(
                        .duplicateTrigger,
                        "duplicate trigger name '\(trigger.name)'\(where_): cron and event triggers share one namespace in Herald's log")
                }
                trigger.location = ConfigLocation(file: node.file, line: node.line)
                seen[trigger.name] = trigger.location
                triggers.append(trigger)
            } catch {
                problems.append(error)
            }
        }
        return (triggers, problems)
    }

    private func parseCronTrigger(_ node: ConfigNode) throws(ConfigError) -> TriggerConfig {
        for (key, value) in try node.entries() {
            if let reason = Self.unsupportedTriggerKeys[key] {
                throw value.error(.unsupported, reason)
            }
        }
        try node.rejectUnknownKeys(Self.cronTriggerKeys)
        let nameNode = try node.required("name")
        let name = try nameNode.string()
        try Self.validateTriggerName(name, node: nameNode)
        let scheduleNode = try node.required("schedule")
        let schedule: CronSchedule
        do {
            schedule = try CronSchedule(try scheduleNode.string())
        } catch {
            throw scheduleNode.error(.invalidValue, "cron trigger '\(name)': \(error)")
        }
        let (webhook, source) = try parseWebhook(node)
        var trigger = TriggerConfig(name: name, table: TableName(schema: "herald", name: "cron_triggers"), webhook: webhook)
        trigger.webhookSource = source
        var scheduled = ScheduledDelivery(kind: .cron(schedule))
        if let payload = try node.child("payload") { scheduled.payloadJSON = YAMLJSON.json(payload.node) }
        scheduled.includeInMetadata = try node.child("include_in_metadata")?.bool() ?? true
        _ = try node.child("replace")?.bool()
        trigger.comment = try node.child("comment")?.string()
        // Hasura's defaults for scheduled triggers: no retry, 10 s apart, 60 s timeout, 6 h tolerance.
        if let retry = try node.child("retry_conf") {
            try retry.rejectUnknownKeys(["num_retries", "retry_interval_seconds", "timeout_seconds", "tolerance_seconds"])
            trigger.retry.numRetries = try integer(retry, "num_retries", minimum: 0) ?? trigger.retry.numRetries
            trigger.retry.intervalSeconds =
                try integer(retry, "retry_interval_seconds", minimum: 0) ?? trigger.retry.intervalSeconds
            trigger.retry.timeoutSeconds = try integer(retry, "timeout_seconds", minimum: 1) ?? trigger.retry.timeoutSeconds
            scheduled.toleranceSeconds = try integer(retry, "tolerance_seconds", minimum: 0) ?? scheduled.toleranceSeconds
        }
        if let backoff = try node.child("retry_backoff") {
            trigger.backoff = try parseBackoff(backoff)
        }
        if let headers = try node.child("headers") {
            trigger.headers = try headers.elements().map { (element) throws(ConfigError) -> HeaderConfig in
                try parseHeader(element, owner: "cron trigger '\(name)'")
            }
        }
        if let signing = try node.child("signing") {
            trigger.signing = try parseSigning(signing)
        }
        trigger.protection = try parseProtection(node)
        trigger.schedule = scheduled
        return trigger
    }
}
