import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// The worker's periodic ``PartitionMaintainer`` pass (what `herald maintain` does once),
/// on a connection and thread of its own, with its metrics:
/// `herald_partition_default_rows` (event rows the last pass found in DEFAULT),
/// `herald_partitions_held_back` (partitions past retention kept for their events) and
/// `herald_partitions_dropped_total`.
struct PartitionMaintenanceService: Service {
    let config: HeraldConfig
    let settings: PartitioningSettings
    let logger: Logger
    private let defaultRows: Gauge
    private let heldBack: Gauge
    private let dropped: Counter

    /// Nil without `partitioning:`. `config` is one source's; `sourceLabel` names it on the
    /// metrics when the worker serves a `sources:` list (each source has its own log).
    init?(config: HeraldConfig, logger: Logger, sourceLabel: String? = nil) {
        guard let settings = config.partitioning else { return nil }
        self.config = config
        self.settings = settings
        self.logger = logger
        let dimensions = sourceLabel.map { [("source", $0)] } ?? []
        defaultRows = Gauge(label: "herald_partition_default_rows", dimensions: dimensions)
        heldBack = Gauge(label: "herald_partitions_held_back", dimensions: dimensions)
        dropped = Counter(label: "herald_partitions_dropped_total", dimensions: dimensions)
    }

    /// Often enough that the premade ranges never run out and a burst in DEFAULT is moved
    /// within a quarter interval; at most every five minutes, at least every five seconds.
    var period: Duration { .seconds(min(max(settings.intervalSeconds / 4, 5), 300)) }

    func run() async throws {
        try await PeriodicService(interval: period) { await pass() }.run()
    }

    func pass() async {
        let config = self.config
        let settings = self.settings
        do {
            let report = try await runBlocking("herald-partitions") {
                try PartitionMaintainer(
                    connection: PGConnection(url: config.database.url), layout: settings.layout,
                    retention: config.retention
                ).run()
            }
            record(report)
        } catch {
            logger.warning("partition maintenance failed; will try again", metadata: ["error": "\(error)"])
        }
    }

    func record(_ report: PartitionMaintainer.Report) {
        defaultRows.record(report.defaultRowsFound)
        heldBack.record(report.heldBack.count)
        dropped.increment(by: report.dropped.count)
        if report.defaultRowsFound > 0 {
            logger.warning(
                "events landed in the DEFAULT partition, past every premade range; raise partitioning.premake or run maintenance more often",
                metadata: [
                    "rows": "\(report.defaultRowsFound)", "moved": "\(report.movedFromDefault)",
                    "left": "\(report.defaultRowsLeft)",
                ])
        }
        for line in report.lines { logger.info("\(line)") }
        if !report.created.isEmpty || !report.dropped.isEmpty {
            logger.info(
                "partition maintenance",
                metadata: ["longest_lock_ms": "\(String(format: "%.1f", report.longestLockMilliseconds))"])
        }
    }
}
