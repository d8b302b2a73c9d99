import ArgumentParser
import Herald
import Logging
import Metrics
import Prometheus

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the worker: claim pending events, deliver them, record the outcomes (what systemd starts).")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await reportingErrors {
            let logger = options.makeLogger()
            // `--source NAME` runs the worker for that source alone (one worker per database).
            let loaded = try options.source == nil ? options.loadConfig() : options.loadSourceConfig()
            // A Citus coordinator's worker nodes become sources of their own.
            let config = CitusSources.expand(loaded, logger: logger)
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            let worker = HeraldWorker(config: config, logger: logger)
            let statsServer = StatsListenAddress(config.stats.listen).map {
                StatsServer.application(worker: worker, registry: registry, address: $0, logger: logger)
            }
            try await worker.run(statsServer: statsServer)
        }
    }
}
