/// The event-trigger keys real `hasura metadata export` output carries besides the
/// delivery settings, with Hasura's meaning where Herald has one.
extension TriggerParser {
    func parseHasuraExtras(_ node: ConfigNode, into trigger: inout TriggerConfig) throws(ConfigError) {
        // `source`: the Hasura source the trigger belongs to. Herald serves one database, so
        // a trigger naming another source than the one being read is a mistake worth naming.
        if let source = try node.child("source") {
            let name = try source.string()
            if let sourceName, name != sourceName {
                throw source.error(
                    .invalidValue, "trigger '\(trigger.name)' belongs to source '\(name)', but is listed under source '\(sourceName)'")
            }
        }
        // `replace`: in Hasura's API, whether creating replaces an existing trigger of the same
        // name. install-triggers always makes the database match the file, so it changes nothing.
        _ = try node.child("replace")?.bool()
        trigger.comment = try node.child("comment")?.string()
        trigger.triggerOnReplication = try node.child("trigger_on_replication")?.bool() ?? false
        if let cleanup = try node.child("cleanup_config") {
            trigger.cleanup = try parseCleanup(cleanup)
        }
    }

    /// Hasura's `cleanup_config`. `clean_invocation_logs` is accepted but cannot keep
    /// invocation rows: in Herald they belong to their event and go with it.
    private func parseCleanup(_ node: ConfigNode) throws(ConfigError) -> CleanupConfig {
        try node.rejectUnknownKeys(["schedule", "clear_older_than", "batch_size", "timeout", "paused", "clean_invocation_logs"])
        let scheduleNode = try node.required("schedule")
        let text = try scheduleNode.string()
        let schedule: CronSchedule
        do {
            schedule = try CronSchedule(text)
        } catch {
            throw scheduleNode.error(.invalidValue, "\(error)")
        }
        let age = try node.required("clear_older_than")
        let hours = try age.int()
        guard hours >= 1 else { throw age.error(.invalidValue, "must be at least 1 (hours; got \(hours))") }
        var cleanup = CleanupConfig(schedule: schedule, clearOlderThanHours: hours)
        if let batch = try node.child("batch_size") {
            let value = try batch.int()
            guard (1...100_000).contains(value) else {
                throw batch.error(.invalidValue, "must be between 1 and 100000 (got \(value))")
            }
            cleanup.batchSize = value
        }
        if let timeout = try node.child("timeout") {
            let value = try timeout.int()
            guard value >= 1 else { throw timeout.error(.invalidValue, "must be at least 1 (seconds; got \(value))") }
            cleanup.timeoutSeconds = value
        }
        cleanup.paused = try node.child("paused")?.bool() ?? false
        _ = try node.child("clean_invocation_logs")?.bool()
        return cleanup
    }
}
