import Foundation

/// The JSON served at GET /stats: who this worker is, its configuration without secrets,
/// the aggregated fetch statistics since start and per-trigger counts and latencies.
public struct StatsDocument: Encodable, Sendable {
    public struct Config: Encodable, Sendable {
        var httpPoolSize: Int
        var httpPerHostLimit: Int
        var fetchBatchSize: Int
        var fetchIntervalMs: Int
        var leaseSeconds: Int
        var database: String
        var triggers: [TriggerSummary]
    }

    public struct TriggerSummary: Encodable, Sendable {
        var name: String
        var table: String
        var webhook: String
        var operations: [String]
        var numRetries: Int
        var signed: Bool
        /// `webhook` or `batch of N` (``TriggerAdmin/delivery(of:)``).
        var delivery: String
    }

    public struct Fetch: Encodable, Sendable {
        var fetches: Int
        var emptyFetches: Int
        var eventsClaimed: Int
        var claimMsMean: Double
        var claimMsMax: Double
        var delivered: Int
        var retried: Int
        var failed: Int
        var inFlight: Int
        var oldestPendingAgeSeconds: Double?
        var recorderFlushes: Int
        var recorderErrors: Int
    }

    public struct TriggerStats: Encodable, Sendable {
        var delivered: Int
        var retried: Int
        var failed: Int
        var latencyMsP50: Double?
        var latencyMsP90: Double?
        var latencyMsP99: Double?
        var queue: QueueStats.Trigger?
        /// Clients of `GET /v1/stream/{trigger}` connected now.
        var streamClients: Int
    }

    public struct SourceStatus: Encodable, Sendable {
        var ready: Bool
        var problem: String?
    }

    var workerId: String
    var version: String
    var uptimeSeconds: Double
    var ready: Bool
    /// Each source's readiness, by name.
    var sources: [String: SourceStatus]
    var config: Config
    var fetch: Fetch
    var triggers: [String: TriggerStats]
    /// The resident set and the allocator's heap statistics now.
    var memory: ProcessMemory

    /// `triggers` is keyed by trigger name, `source/name` for triggers of a source other than
    /// `default`.
    init(worker: HeraldWorker, snapshot: WorkerStats.Snapshot, queues: [String: QueueStats]) {
        let config = worker.config
        workerId = worker.workerID
        version = Herald.version
        uptimeSeconds = (Date().timeIntervalSince(worker.stats.startedAt) * 10).rounded() / 10
        ready = worker.readiness.ready
        sources = Dictionary(
            uniqueKeysWithValues: worker.sourceReadiness.map {
                ($0.source, SourceStatus(ready: $0.ready, problem: $0.ready ? nil : $0.problem))
            })
        self.config = Config(
            httpPoolSize: config.worker.httpPoolSize, httpPerHostLimit: config.worker.httpPerHostLimit,
            fetchBatchSize: config.worker.fetchBatchSize, fetchIntervalMs: config.worker.fetchIntervalMilliseconds,
            leaseSeconds: config.worker.leaseSeconds, database: config.database.redactedURL,
            triggers: config.triggers.map { trigger in
                TriggerSummary(
                    name: trigger.name, table: trigger.table.description, webhook: trigger.displayWebhook,
                    operations: CaptureOperation.allCases.filter { trigger.spec(for: $0) != nil }.map(\.rawValue)
                        + (trigger.enableManual ? ["manual"] : []),
                    numRetries: trigger.retry.numRetries, signed: trigger.signing != nil,
                    delivery: TriggerAdmin.delivery(of: trigger))
            })
        fetch = Fetch(
            fetches: snapshot.fetches, emptyFetches: snapshot.emptyFetches, eventsClaimed: snapshot.eventsClaimed,
            claimMsMean: (snapshot.claimSecondsMean * 1e5).rounded() / 100,
            claimMsMax: (snapshot.claimSecondsMax * 1e5).rounded() / 100, delivered: snapshot.delivered,
            retried: snapshot.retried, failed: snapshot.failed, inFlight: snapshot.inFlight,
            oldestPendingAgeSeconds: snapshot.oldestPendingAgeSeconds, recorderFlushes: snapshot.recorderFlushes,
            recorderErrors: snapshot.recorderErrors)
        let perTrigger = worker.stats.perTrigger()
        let streamClients = worker.streamClients.current
        var triggers: [String: TriggerStats] = [:]
        for (ref, _) in config.triggersBySource {
            let key = ref.description
            let counts = perTrigger[key] ?? WorkerStats.TriggerSnapshot()
            func milliseconds(_ fraction: Double) -> Double? {
                counts.latencyPercentile(fraction).map { ($0 * 1e5).rounded() / 100 }
            }
            triggers[key] = TriggerStats(
                delivered: counts.delivered, retried: counts.retried, failed: counts.failed,
                latencyMsP50: milliseconds(0.5), latencyMsP90: milliseconds(0.9), latencyMsP99: milliseconds(0.99),
                queue: queues[ref.source]?.triggers.first { $0.trigger == ref.name },
                streamClients: ref.source == SourceConfig.defaultName ? streamClients[ref.name] ?? 0 : 0)
        }
        self.triggers = triggers
        memory = ProcessMemory.current()
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
