import ArgumentParser
import Herald
import Logging
import Metrics
import Prometheus
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
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            let worker = HeraldWorker(config: config, logger: logger)
            var services: [any Service] = []
            if let address = StatsListenAddress(config.stats.listen) {
                services.append(StatsServer.application(worker: worker, registry: registry, address: address, logger: logger))
            }
            // Shut down in reverse: the worker drains first, the stats endpoint answers until the end.
            services.append(worker)
            let group = ServiceGroup(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [],
                logger: logger)
            try await group.run()
        }
    }
}
