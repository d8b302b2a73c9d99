import ArgumentParser
import Foundation
import Herald

struct RedeliverEventCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redeliver-event",
        abstract: "Put events back to pending with tries reset (same event id, same webhook-id).",
        discussion: """
            IDs are the payload ids (UUIDs) receivers see, or event numbers. In bulk:
              herald redeliver-event --trigger order_changes --status failed --since 24h
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "Event ids.")
    var ids: [String] = []

    @Option(help: "Bulk: every event of this trigger…")
    var trigger: String?

    @Option(help: "Bulk: …in this status (failed, delivered or pending).")
    var status: String = "failed"

    @Option(help: "Bulk: …created within this long (e.g. 24h, 7d).")
    var since: String?

    @Flag(help: "Redeliver even events currently leased by a worker.")
    var force = false

    @Flag(help: "Bulk: skip the confirmation prompt.")
    var yes = false

    func validate() throws {
        if ids.isEmpty && trigger == nil {
            throw ValidationError("give event ids, or --trigger with --status")
        }
        if !ids.isEmpty && trigger != nil {
            throw ValidationError("give either event ids or --trigger, not both")
        }
        if !["failed", "delivered", "pending"].contains(status) {
            throw ValidationError("--status must be failed, delivered or pending")
        }
        if let since, DurationText.seconds(since) == nil {
            throw ValidationError(DurationText.problem(since, in: "--since"))
        }
    }

    func run() async throws {
        try await reportingErrors {
            let config = try options.loadSourceConfig()
            let admins = try options.loadNodeConfigs(logger: options.makeLogger()).map {
                try EventAdmin(connection: PGConnection(url: $0.database.url))
            }
            if let trigger {
                try bulk(admins, trigger: trigger, config: config)
                return
            }
            var problems = 0
            for id in ids {
                // The database whose log has the event (a Citus cluster has one per node).
                let (admin, result) = try firstKnown(admins) { try $0.redeliver(id, force: force) }
                switch result {
                case .queued(let number):
                    print("event \(try admin.publicID(number)) queued for redelivery")
                case .unknown(let text):
                    problems += 1
                    printError(EventID.notFoundMessage(text))
                case .busy(let number, let worker):
                    problems += 1
                    printError("event \(try admin.publicID(number)): being delivered by \(worker); use --force to redeliver anyway")
                }
            }
            if problems > 0 { throw ExitCode.failure }
        }
    }

    private func bulk(_ admins: [EventAdmin], trigger: String, config: HeraldConfig) throws {
        guard config.trigger(named: trigger) != nil else {
            throw CLIFailure(message: "trigger '\(trigger)' is not in \(config.file)")
        }
        let seconds = since.flatMap(DurationText.seconds)
        let count = try admins.reduce(0) { try $0 + $1.countMatching(trigger: trigger, status: status, sinceSeconds: seconds) }
        if count == 0 {
            print("no \(status) events for trigger \(trigger)")
            return
        }
        if !yes {
            try confirm("redeliver \(count) \(status) events of trigger \(trigger)?")
        }
        let queued = try admins.reduce(0) {
            try $0 + $1.redeliverAll(trigger: trigger, status: status, sinceSeconds: seconds, force: force)
        }
        print("queued \(queued) events of trigger \(trigger) for redelivery")
    }
}

struct InvokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invoke",
        abstract: "Create a MANUAL event for a trigger with enable_manual: true; prints its id.")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "Trigger name.")
    var trigger: String

    @Option(help: "JSON sent as event.data.new.")
    var data: String

    func run() async throws {
        try await reportingErrors {
            let config = try options.loadSourceConfig()
            guard let trigger = config.trigger(named: trigger) else {
                throw CLIFailure(message: "trigger '\(self.trigger)' is not in \(config.file)")
            }
            guard trigger.enableManual else {
                throw CLIFailure(message: "trigger '\(trigger.name)' does not allow manual invocation (enable_manual is false)")
            }
            if let problem = EventAdmin.manualDataProblem(data) {
                throw CLIFailure(message: "--data \(problem)")
            }
            let admin = try EventAdmin(connection: PGConnection(url: config.database.url))
            do {
                print(try admin.publicID(try admin.invoke(trigger: trigger, data: data)))
            } catch let error as PGError where error.sqlState == "22P02" {
                throw CLIFailure(message: "--data is not valid JSON: \(error.message)")
            }
        }
    }
}

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Queue depth per trigger and status, oldest pending age, recent failures.")

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Print stable JSON instead of a table.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            // On a Citus coordinator, each worker node's log is listed as a source of its own.
            var logger = options.makeLogger()
            // Quiet: a database that cannot be reached is this command's own error to report.
            logger.logLevel = .critical
            let configs = try options.loadSourceConfigs().flatMap { config in
                let expanded = CitusSources.expand(config, logger: logger)
                return expanded.sources.map { expanded.scoped(to: $0) }
            }
            var documents: [String] = []
            for config in configs {
                let connection = try PGConnection(url: config.database.url)
                try SchemaCheck.requireInstalled(connection)
                let stats = try QueueStats.read(connection, configured: config.listedTriggerNames)
                if json {
                    documents.append(stats.json)
                    continue
                }
                printSourceHeading(config, of: configs.count)
                print(stats.table)
                stats.consoleLinks(publicURL: config.console.publicURL).forEach { print($0) }
            }
            if json {
                // One source: its document as before; several: an object by source name.
                print(
                    configs.count == 1
                        ? documents[0]
                        : "{" + zip(configs, documents).map { "\"\($0.sources[0].name)\":\($1)" }.joined(separator: ",") + "}")
            }
        }
    }
}

struct CleanupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup",
        abstract: "Delete delivered events (and their invocation rows) older than a cutoff, in small batches.")

    @OptionGroup var options: GlobalOptions

    @Option(help: "Age cutoff, e.g. 7d, 12h.")
    var olderThan: String

    @Flag(help: "Also delete failed events.")
    var includeFailed = false

    @Flag(help: "Only count what would be deleted.")
    var dryRun = false

    @Flag(help: "Skip the confirmation prompt.")
    var yes = false

    func run() async throws {
        try await reportingErrors {
            guard let seconds = DurationText.seconds(olderThan) else {
                throw CLIFailure(message: DurationText.problem(olderThan, in: "--older-than"))
            }
            // On a Citus coordinator, each worker node's log too.
            let retentions = try options.loadNodeConfigs(logger: options.makeLogger()).map { config in
                let connection = try PGConnection(url: config.database.url)
                try SchemaCheck.requireInstalled(connection)
                return Retention(connection: connection)
            }
            let scope: Retention.Scope = includeFailed ? .deliveredAndFailed : .delivered
            let what = includeFailed ? "delivered and failed" : "delivered"
            var preview = Retention.Report()
            for retention in retentions {
                let part = try retention.preview(olderThanSeconds: seconds, scope: scope)
                preview.events += part.events
                preview.invocations += part.invocations
            }
            if dryRun {
                print("would remove \(preview.events) events and \(preview.invocations) invocation rows")
            } else {
                if !yes, preview.events > 0 {
                    try confirm(
                        "remove \(preview.events) \(what) events that finished more than \(olderThan) ago, and their \(preview.invocations) invocation rows?")
                }
                var report = Retention.Report()
                for retention in retentions {
                    let part = try retention.run(olderThanSeconds: seconds, scope: scope)
                    report.events += part.events
                    report.invocations += part.invocations
                }
                print("removed \(report.events) events and \(report.invocations) invocation rows")
            }
        }
    }
}

/// Asks on the terminal; without one (a script, a pipe) refuses and says how to proceed.
func confirm(_ question: String) throws {
    guard isatty(STDIN_FILENO) == 1 else {
        throw CLIFailure(message: "\(question) — no terminal to confirm on: pass --yes to proceed; nothing changed")
    }
    print("\(question) [y/N] ", terminator: "")
    guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
        throw CLIFailure(message: "cancelled; nothing changed")
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("herald: \(message)\n".utf8))
}
