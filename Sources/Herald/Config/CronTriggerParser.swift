import Foundation

/// Reads Hasura's cron triggers (`cron_triggers.yaml` of a metadata export, or `cron_triggers:`
/// in Herald's file) into scheduled ``TriggerConfig``s that the delivery engine serves like
/// any trigger: retries, signing, rate limits, breakers, alerts, stats, metrics, console.
extension TriggerParser {
    static let cronTriggerKeys = Set([
        "name", "webhook", "webhook_from_env", "schedule", "payload", "headers", "retry_conf", "comment",
        "include_in_metadata", "replace",
        // Herald extensions, as on event triggers.
        "retry_backoff", "signing", "request_transform",
    ]).union(protectionKeys)

    /// Every cron trigger of `list` with every problem, so all are reported in one run; as
    /// with ``parseAll(tables:)``, a trigger with problems is in the list as far as it could
    /// be read (the lease is checked against its timeout), and the list is usable only when
    /// no problem comes with it. `taken` holds the event triggers' names: the two kinds share
    /// one log and one namespace of trigger names.
    func parseCronTriggers(_ list: ConfigNode, taken: [String: ConfigLocation]) throws(ConfigError)
        -> ([TriggerConfig], [ConfigError])
    {
        var triggers: [TriggerConfig] = []
        var problems = ProblemList()
        var seen = taken
        for element in try list.resolvingInclude().elements() {
            guard let node = problems.check({ () throws(ConfigError) in try element.resolvingInclude() }) else { continue }
            let (parsed, triggerProblems) = parseCronTrigger(node)
            problems.record(contentsOf: triggerProblems)
            guard var trigger = parsed else { continue }
            if let first = seen[trigger.name] {
                let where_ = " (first defined at \(first.file)\(first.line.map { ":\($0)" } ?? ""))"
                problems.record(
                    node.error(
                        .duplicateTrigger,
                        "duplicate trigger name '\(trigger.name)'\(where_): cron and event triggers share one namespace in Herald's log"))
                continue
            }
            trigger.location = ConfigLocation(file: node.file, line: node.line)
            seen[trigger.name] = trigger.location
            triggers.append(trigger)
        }
        return (triggers, problems.all)
    }

    /// One cron trigger, each part on its own like an event trigger's (``parseTrigger``), so
    /// a bad schedule hides neither a missing webhook variable nor a header's.
    private func parseCronTrigger(_ node: ConfigNode) -> (TriggerConfig?, [ConfigError]) {
        var problems = ProblemList()
        guard checkKeys(node, allowed: Self.cronTriggerKeys, problems: &problems) else { return (nil, problems.all) }
        let name = readName(node, problems: &problems)
        let label = name ?? ""
        let schedule = problems.check { () throws(ConfigError) -> CronSchedule in
            let scheduleNode = try node.required("schedule")
            let text = try scheduleNode.string()
            do {
                return try CronSchedule(text)
            } catch {
                throw scheduleNode.error(.invalidValue, "cron trigger '\(label)': \(error)")
            }
        }
        let (webhook, source) = problems.check { () throws(ConfigError) in try parseWebhook(node) } ?? ("", .literal)
        var trigger = TriggerConfig(name: label, table: TableName(schema: "herald", name: "cron_triggers"), webhook: webhook)
        trigger.webhookSource = source
        let payload =
            problems.check { () throws(ConfigError) in try node.child("payload").map { YAMLJSON.json($0.node) } } ?? nil
        let includeInMetadata =
            problems.check { () throws(ConfigError) in try node.child("include_in_metadata")?.bool() ?? true } ?? true
        problems.check { () throws(ConfigError) in _ = try node.child("replace")?.bool() }
        problems.check { () throws(ConfigError) in trigger.comment = try node.child("comment")?.string() }
        // Hasura's defaults for scheduled triggers: no retry, 10 s apart, 60 s timeout, 6 h tolerance.
        var tolerance: Int?
        if let retry = problems.check({ () throws(ConfigError) in try node.child("retry_conf") }) ?? nil {
            problems.record(
                contentsOf: retry.unknownKeyProblems([
                    "num_retries", "retry_interval_seconds", "timeout_seconds", "tolerance_seconds",
                ]))
            readRetry(
                retry, intervalKey: "retry_interval_seconds", timeoutKey: "timeout_seconds", into: &trigger.retry,
                problems: &problems)
            tolerance = problems.check { () throws(ConfigError) in try integer(retry, "tolerance_seconds", minimum: 0) } ?? nil
        }
        readDeliveryExtras(node, owner: "cron trigger '\(label)'", into: &trigger, problems: &problems)
        // Without a schedule the trigger is only checked (it comes with a problem), never run.
        if let schedule {
            var scheduled = ScheduledDelivery(kind: .cron(schedule))
            scheduled.payloadJSON = payload ?? scheduled.payloadJSON
            scheduled.includeInMetadata = includeInMetadata
            scheduled.toleranceSeconds = tolerance ?? scheduled.toleranceSeconds
            trigger.schedule = scheduled
        }
        return (name == nil ? nil : trigger, problems.inFileOrder)
    }
}
