import ArgumentParser
import Foundation
import Herald

struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration and the environment it names; print what would run.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await reportingErrors {
            let config = try options.source == nil ? options.loadConfig() : options.loadSourceConfig()
            print(redacted(ConfigSummary.text(for: config)))
            CitusLayoutReport.lines(for: config).forEach { print(redacted($0)) }
            print("configuration OK")
        }
    }
}

struct InstallTriggersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-triggers",
        abstract: "Apply Herald's schema and make the capture triggers match the configuration, atomically.")

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Print the SQL that would run and change nothing.")
    var dryRun = false

    @Flag(help: "Also drop Herald triggers on tables this configuration does not name (e.g. tables removed from it).")
    var prune = false

    func run() async throws {
        try await reportingErrors {
            let logger = options.makeLogger()
            let configs = try options.loadSourceConfigs()
            // One transaction per source (per database): a source that fails stops the
            // command, sources before it stay installed.
            for config in configs {
                if dryRun, configs.count > 1, let source = config.sources.first { print("-- source \(source.name):") }
                if !dryRun { printSourceHeading(config, of: configs.count) }
                let connection = try PGConnection(url: config.database.url)
                let installer = TriggerInstaller(config: config, logger: logger, pruneOtherTables: prune)
                let plan = dryRun ? try installer.plan(connection) : try installer.install(connection)
                let prefix = dryRun ? "-- " : ""
                if !dryRun { plan.citusLayoutLines.forEach { print($0) } }
                var partitioning: [String] = []
                if let settings = config.partitioning {
                    if !dryRun {
                        partitioning = try PartitionConversion.install(settings, connection)
                    } else if try !PartitionConversion.isPartitioned(connection) {
                        partitioning = [PartitionConversion(layout: settings.layout).script()]
                    }
                }
                if plan.isEmpty && partitioning.isEmpty {
                    print("\(prefix)no changes: \(plan.unchanged.count) triggers up to date")
                } else if dryRun {
                    if !plan.isEmpty { print(plan.script) }
                } else {
                    plan.summary.forEach { print($0) }
                }
                partitioning.forEach { print($0) }
                for trigger in plan.keptOtherTables {
                    printError(
                        "warning: kept Herald trigger \(trigger.name) on \(trigger.table), a table this configuration does not name (another configuration's on the same database?); pass --prune to drop it")
                }
            }
        }
    }
}

struct MigrateFromHasuraCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate-from-hasura",
        abstract: "Take over a database Hasura's event triggers served, in one transaction.",
        discussion: """
            Installs Herald's schema and triggers, drops Hasura's notify_hasura_* triggers of the
            configured event triggers, and moves Hasura's undelivered events into herald.event_log
            keeping their ids (payload id and webhook-id) and tries. Stop Hasura's event delivery
            first; events Hasura is delivering at that moment make the command refuse.
            """)

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Do everything in a transaction that is rolled back; print what would change.")
    var dryRun = false

    func run() async throws {
        try await reportingErrors {
            let logger = options.makeLogger()
            let config = try options.loadSourceConfig()
            let connection = try PGConnection(url: config.database.url)
            let report = try HasuraMigration(config: config, logger: logger).run(connection, dryRun: dryRun)
            if dryRun { print("dry run: nothing was changed; the migration would do this:") }
            report.summary.forEach { print($0) }
        }
    }
}
