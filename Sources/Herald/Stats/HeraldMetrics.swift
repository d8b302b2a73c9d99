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
    private let triggers: [String: TriggerMetrics]

    public init(triggerNames: [String]) {
        var triggers: [String: TriggerMetrics] = [:]
        for name in triggerNames {
            func outcome(_ value: String) -> Counter {
                Counter(label: "herald_deliveries_total", dimensions: [("trigger", name), ("outcome", value)])
            }
            triggers[name] = TriggerMetrics(
                delivered: outcome("delivered"), retried: outcome("retry"), failed: outcome("failed"), blocked: outcome("blocked"),
                deliveryDuration: Metrics.Timer(label: "herald_delivery_duration_seconds", dimensions: [("trigger", name)]),
                endToEnd: Metrics.Timer(label: "herald_end_to_end_latency_seconds", dimensions: [("trigger", name)]),
                deferredByReceiver: outcome("deferred"),
                deferred: Dictionary(
                    uniqueKeysWithValues: [FlowControl<DeliveryJob>.DeferReason.rateLimit, .circuitOpen, .disabled].map {
                        ($0, Counter(label: "herald_deliveries_deferred_total", dimensions: [("trigger", name), ("reason", $0.rawValue)]))
                    }),
                enabled: Gauge(label: "herald_trigger_enabled", dimensions: [("trigger", name)]),
                circuitState: Gauge(label: "herald_circuit_state", dimensions: [("trigger", name)]))
        }
        self.triggers = triggers
    }

    func trigger(_ name: String) -> TriggerMetrics? { triggers[name] }

    /// Sets `herald_queue_depth{trigger, status}` from a database read.
    func setQueueDepth(_ stats: QueueStats) {
        for trigger in stats.triggers {
            for (status, value) in [
                ("pending", trigger.pending), ("in_flight", trigger.inFlight), ("delivered", trigger.delivered),
                ("failed", trigger.failed),
            ] {
                Gauge(label: "herald_queue_depth", dimensions: [("trigger", trigger.trigger), ("status", status)])
                    .record(value)
            }
            Gauge(label: "herald_blocked_keys", dimensions: [("trigger", trigger.trigger)]).record(trigger.blockedKeys)
            Gauge(label: "herald_oldest_blocked_age_seconds", dimensions: [("trigger", trigger.trigger)])
                .record(trigger.oldestBlockedAgeSeconds ?? 0)
        }
    }
}
