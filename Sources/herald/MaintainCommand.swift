import ArgumentParser
import Foundation
import Herald

struct MaintainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maintain",
        abstract: "Partitioned log: create the partitions ahead, empty DEFAULT, drop partitions past retention.",
        discussion: """
            For a cron job or systemd timer; herald run does the same periodically. Needs
            partitioning: in the configuration and a log converted by install-triggers.
            """)

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await reportingErrors {
            let configs = try options.loadSourceConfigs()
            guard let settings = configs.first?.partitioning else {
                throw CLIFailure(
                    message: "\(configs.first?.file ?? "the configuration") has no partitioning: section; maintain only serves a partitioned log")
            }
            // Every source (each database has its own log) unless --source names one.
            for config in configs {
                printSourceHeading(config, of: configs.count)
                let report = try PartitionMaintainer(
                    connection: PGConnection(url: config.database.url), layout: settings.layout,
                    retention: config.retention
                ).run()
                if report.defaultRowsFound > 0 {
                    printError(
                        "warning: \(report.defaultRowsFound) events were in the DEFAULT partition, past every premade range; raise partitioning.premake or run maintain more often")
                }
                report.lines.forEach { print($0) }
                if report.lines.isEmpty { print("no changes") }
            }
        }
    }
}
