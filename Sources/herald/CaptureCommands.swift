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
            let config = try options.loadConfig()
            print(ConfigSummary.text(for: config))
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

    func run() async throws {
        try await reportingErrors {
            let logger = options.makeLogger()
            let config = try options.loadConfig()
            let connection = try PGConnection(url: config.database.url)
            let installer = TriggerInstaller(config: config, logger: logger)
            if dryRun {
                let plan = try installer.plan(connection)
                if plan.isEmpty {
                    print("-- no changes: \(plan.unchanged.count) triggers up to date")
                } else {
                    print(plan.script)
                }
                return
            }
            let plan = try installer.install(connection)
            if plan.isEmpty {
                print("no changes: \(plan.unchanged.count) triggers up to date")
            } else {
                plan.summary.forEach { print($0) }
            }
        }
    }
}
