import Synchronization
import Metrics

/// Herald's metrics through swift-metrics (exported by swift-prometheus at /metrics). Handles
/// are made once per trigger and outcome at start, not looked up per event.
public final class HeraldMetrics: Sendable {
    struct TriggerMetrics: Sendable {
        let delivered: Counter
        let retried: Counter
        let failed: Counter
        /// Attempts after which an ordered head blocked its key.
        let blocked: Counter
        let deliveryDuration: Metrics.Timer
        let endToEnd: Metrics.Timer
        /// Attempts after which the receiver disabled the trigger (the event stays pending).
        let deferredByReceiver: Counter
        /// Events held back: `herald_deliveries_deferred_total{trigger, reason}`.
        let deferred: [FlowControl<DeliveryJob>.DeferReason: Counter]
        /// 1 while the trigger is enabled in this worker.
        let enabled: Gauge
        /// 0 closed, 1 open, 2 half-open.
        let circuitState: Gauge
    }

    let eventsClaimed = Counter(label: "herald_events_claimed_total")
    let fetches = Counter(label: "herald_fetches_total")
    let claimDuration = Metrics.Timer(label: "herald_claim_duration_seconds")
    let inFlight = Gauge(label: "herald_in_flight")
    let flushSize = Metrics.Recorder(label: "herald_recorder_flush_size", aggregate: true)
    let flushDuration = Metrics.Timer(label: "herald_recorder_flush_duration_seconds")
    let flushErrors = Counter(label: "herald_recorder_flush_errors_total")
    let leaseExpiredDrops = Counter(label: "herald_lease_expired_drops_total")
    let droppedOutcomes = Counter(label: "herald_outcomes_dropped_total")
    /// 1 while the worker can work (database reachable, not stopping).
    let ready = Gauge(label: "herald_ready")
    let oldestPendingAge = Gauge(label: "herald_oldest_pending_age_seconds")
    /// The resident set and the allocator's view of the heap (see ``ProcessMemory``), read at
    /// each scrape: a slow leak shows as a slope in `herald_heap_in_use_bytes`.
    private let residentMemory = Gauge(label: "herald_resident_memory_bytes")
    private let heapInUse = Gauge(label: "herald_heap_in_use_bytes")
    private let heapFree = Gauge(label: "herald_heap_free_bytes")
    private let triggers: [TriggerRef: TriggerMetrics]
    /// Triggers of sources found while running (Citus worker nodes added to the cluster):
    /// read only when a trigger is not among those known at the start.
    private let addedTriggers = Mutex<[TriggerRef: TriggerMetrics]>([:])
    private let addedSourceReady = Mutex<[String: Gauge]>([:])
    /// Whether per-trigger series carry a `source` label: only for a `sources:` config, so a
    /// single-database deployment keeps its series exactly as before.
    let labelsSources: Bool
    /// `herald_source_ready{source}`: 1 while the source's claimer holds a live connection.
    private let sourceReady: [String: Gauge]

    /// - Parameters:
    ///   - triggers: every trigger of every source.
    ///   - labelsSources: add `source` to per-trigger series (the `sources:` form).
    public init(triggers: [TriggerRef], labelsSources: Bool = false) {
        self.labelsSources = labelsSources
        self.triggers = Dictionary(uniqueKeysWithValues: triggers.map { ($0, Self.makeTriggerMetrics($0, labelsSources: labelsSources)) })
        sourceReady = Dictionary(
            uniqueKeysWithValues: Set(triggers.map(\.source)).map {
                ($0, Gauge(label: "herald_source_ready", dimensions: [("source", $0)]))
            })
    }

    /// Series for the triggers of a source found while running.
    func add(triggers refs: [TriggerRef]) {
        addedTriggers.withLock { added in
            for ref in refs where triggers[ref] == nil && added[ref] == nil {
                added[ref] = Self.makeTriggerMetrics(ref, labelsSources: labelsSources)
            }
        }
        addedSourceReady.withLock { added in
            for source in Set(refs.map(\.source)) where sourceReady[source] == nil && added[source] == nil {
                added[source] = Gauge(label: "herald_source_ready", dimensions: [("source", source)])
            }
        }
    }

    private static func makeTriggerMetrics(_ ref: TriggerRef, labelsSources: Bool) -> TriggerMetrics {
            let base: [(String, String)] =
                labelsSources ? [("trigger", ref.name), ("source", ref.source)] : [("trigger", ref.name)]
            func outcome(_ value: String) -> Counter {
                Counter(label: "herald_deliveries_total", dimensions: base + [("outcome", value)])
            }
            return TriggerMetrics(
                delivered: outcome("delivered"), retried: outcome("retry"), failed: outcome("failed"), blocked: outcome("blocked"),
                deliveryDuration: Metrics.Timer(label: "herald_delivery_duration_seconds", dimensions: base),
                endToEnd: Metrics.Timer(label: "herald_end_to_end_latency_seconds", dimensions: base),
                deferredByReceiver: outcome("deferred"),
                deferred: Dictionary(
                    uniqueKeysWithValues: [FlowControl<DeliveryJob>.DeferReason.rateLimit, .circuitOpen, .disabled].map {
                        ($0, Counter(label: "herald_deliveries_deferred_total", dimensions: base + [("reason", $0.rawValue)]))
                    }),
                enabled: Gauge(label: "herald_trigger_enabled", dimensions: base),
                circuitState: Gauge(label: "herald_circuit_state", dimensions: base))
    }

    /// A worker with the default source only.
    public convenience init(triggerNames: [String]) {
        self.init(triggers: triggerNames.map { TriggerRef(name: $0) })
    }

    func trigger(_ ref: TriggerRef) -> TriggerMetrics? { triggers[ref] ?? addedTriggers.withLock { $0[ref] } }

    func record(_ memory: ProcessMemory) {
        residentMemory.record(memory.residentBytes)
        heapInUse.record(memory.heapInUseBytes)
        heapFree.record(memory.heapFreeBytes)
    }

    /// `herald_cron_ticks_total{trigger, outcome}`: ticks this worker logged as events
    /// (`created`) or recorded as missed because no worker ran within the tolerance.
    func countCronTicks(trigger: String, outcome: String, _ count: Int) {
        guard count > 0 else { return }
        Counter(label: "herald_cron_ticks_total", dimensions: [("trigger", trigger), ("outcome", outcome)])
            .increment(by: Int64(count))
    }

    func setSourceReady(_ source: String, _ ready: Bool) {
        (sourceReady[source] ?? addedSourceReady.withLock { $0[source] })?.record(ready ? 1 : 0)
    }

    /// Sets `herald_trigger_drift{kind}` (and `source` with ``labelsSources``): how many
    /// configured triggers are not installed, installed differently or on a missing table,
    /// and how many installed Herald triggers no configuration names. 0 for each kind when
    /// configuration and database agree, so an alert can be `> 0`.
    func setTriggerDrift(_ drift: TriggerDrift, source: String) {
        for kind in TriggerDrift.Kind.allCases {
            let dimensions = [("kind", kind.rawValue)] + (labelsSources ? [("source", source)] : [])
            Gauge(label: "herald_trigger_drift", dimensions: dimensions).record(drift.count(kind))
        }
    }

    /// Sets `herald_consumer_lag_seconds{consumer}`: how long the oldest event a pull
    /// consumer group has not acknowledged has waited (0 when none waits).
    func setConsumerLag(_ stats: QueueStats, consumers: [ConsumerConfig], triggers: [TriggerConfig]) {
        for consumer in consumers {
            let names = Set(triggers.filter { $0.pullConsumer == consumer.name }.map(\.name))
            let lag = stats.triggers.filter { names.contains($0.trigger) }.compactMap(\.oldestPendingAgeSeconds).max()
            Gauge(label: "herald_consumer_lag_seconds", dimensions: [("consumer", consumer.name)]).record(lag ?? 0)
        }
    }

    /// Sets `herald_queue_depth{trigger, status}` (and `source` with ``labelsSources``) from
    /// a read of one source's database.
    func setQueueDepth(_ stats: QueueStats, source: String = SourceConfig.defaultName) {
        for trigger in stats.triggers {
            let base: [(String, String)] =
                labelsSources ? [("trigger", trigger.trigger), ("source", source)] : [("trigger", trigger.trigger)]
            for (status, value) in [
                ("pending", trigger.pending), ("in_flight", trigger.inFlight), ("delivered", trigger.delivered),
                ("failed", trigger.failed),
            ] {
                Gauge(label: "herald_queue_depth", dimensions: base + [("status", status)]).record(value)
            }
            Gauge(label: "herald_blocked_keys", dimensions: base).record(trigger.blockedKeys)
            Gauge(label: "herald_oldest_blocked_age_seconds", dimensions: base)
                .record(trigger.oldestBlockedAgeSeconds ?? 0)
        }
    }
}
