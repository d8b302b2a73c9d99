import ArgumentParser
import Herald
import Logging
import ServiceLifecycle

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the worker: claim pending events, deliver them, record the outcomes (what systemd starts).")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await reportingErrors {
            let logger = options.makeLogger()
            let config = try options.loadConfig()
            let worker = HeraldWorker(config: config, logger: logger)
            let group = ServiceGroup(
                services: [worker], gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [],
                logger: logger)
            try await group.run()
        }
    }
}
