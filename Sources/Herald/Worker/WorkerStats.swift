import Algorithms
import Foundation
import Synchronization

/// Counters the worker keeps for the periodic fetch-statistics line, STATUS= lines and
/// /stats, mirrored into swift-metrics. Updated from the claimer, deliverer and recorder
/// threads under one small lock.
public final class WorkerStats: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var fetches = 0
        public var emptyFetches = 0
        public var eventsClaimed = 0
        public var claimSecondsTotal = 0.0
        public var claimSecondsMax = 0.0
        public var delivered = 0
        public var retried = 0
        public var failed = 0
        public var inFlight = 0
        public var oldestPendingAgeSeconds: Double?
        public var recorderFlushes = 0
        public var recorderErrors = 0
        /// Queued jobs dropped unsent because their lease would end before they could finish.
        public var leaseExpiredDrops = 0
        /// Outcomes that could not be written (their event was deleted in flight).
        public var droppedOutcomes = 0

        public var claimSecondsMean: Double { fetches == 0 ? 0 : claimSecondsTotal / Double(fetches) }
    }

    /// Per trigger since start: outcomes and a window of recent end-to-end latencies.
    public struct TriggerSnapshot: Sendable, Equatable {
        public var delivered = 0
        public var retried = 0
        public var failed = 0
        /// Seconds from event creation to its 2xx: the most recent ``latencyWindow``, as a
        /// ring (order does not matter for percentiles).
        public var latencies: [Double] = []
        var nextSlot = 0

        mutating func record(delivered latencies: [Double], retried: Int, failed: Int) {
            for latency in latencies { recordDelivered(latency: latency) }
            self.retried += retried
            self.failed += failed
        }

        mutating func recordDelivered(latency: Double) {
            delivered += 1
            if latencies.count < WorkerStats.latencyWindow {
                latencies.append(latency)
            } else {
                latencies[nextSlot] = latency
                nextSlot = (nextSlot + 1) % WorkerStats.latencyWindow
            }
        }

        public func latencyPercentile(_ fraction: Double) -> Double? {
            guard !latencies.isEmpty else { return nil }
            let sorted = latencies.sorted()
            return sorted[min(sorted.count - 1, Int(fraction * Double(sorted.count)))]
        }
    }

    static let latencyWindow = 1024

    /// Totals since start, and the same counters since the last fetch-stats line.
    private struct Counters {
        var total = Snapshot()
        var interval = Snapshot()
        var triggers: [String: TriggerSnapshot] = [:]

        mutating func update(_ change: (inout Snapshot) -> Void) {
            change(&total)
            change(&interval)
        }
    }

    private let state = Mutex(Counters())
    public let metrics: HeraldMetrics
    public let startedAt = Date()

    public init(metrics: HeraldMetrics = HeraldMetrics(triggerNames: [])) {
        self.metrics = metrics
    }

    func recordFetch(claimed: Int, seconds: Double) {
        metrics.fetches.increment()
        metrics.eventsClaimed.increment(by: claimed)
        metrics.claimDuration.recordNanoseconds(Int64(seconds * 1e9))
        state.withLock {
            $0.update {
                $0.fetches += 1
                if claimed == 0 { $0.emptyFetches += 1 }
                $0.eventsClaimed += claimed
                $0.claimSecondsTotal += seconds
                $0.claimSecondsMax = max($0.claimSecondsMax, seconds)
            }
        }
    }

    /// Per-trigger counts are kept under the trigger's ``TriggerRef/description``.
    /// Called once per delivery turn with every outcome it finished: one clock read and one
    /// lock for all of them, and each trigger's metrics looked up once per run of its
    /// outcomes (a per-outcome lock, clock and lookup showed in the delivery thread's profile).
    func recordDeliveries(_ outcomes: [DeliveryOutcome]) {
        guard !outcomes.isEmpty else { return }
        let now = Date().timeIntervalSince1970
        let runs = outcomes.chunked(on: { TriggerRef(source: $0.event.source, name: $0.event.triggerName) })

        for (trigger, run) in runs {
            guard let metrics = metrics.trigger(trigger) else { continue }
            for outcome in run {
                metrics.deliveryDuration.recordNanoseconds(Int64(outcome.durationMilliseconds * 1e6))
                switch outcome.decision {
                case .delivered:
                    metrics.delivered.increment()
                    metrics.endToEnd.recordNanoseconds(Int64(max(0, now - outcome.event.createdAtEpoch) * 1e9))
                case .retry: metrics.retried.increment()
                case .failed: metrics.failed.increment()
                case .blocked: metrics.blocked.increment()
                case .deferred: metrics.deferredByReceiver.increment()
                }
            }
        }
        let tallies = runs.map { trigger, run in
            var tally = (key: trigger.description, latencies: [Double](), retried: 0, failed: 0)
            for outcome in run {
                switch outcome.decision {
                case .delivered: tally.latencies.append(max(0, now - outcome.event.createdAtEpoch))
                case .retry, .deferred: tally.retried += 1
                case .failed, .blocked: tally.failed += 1
                }
            }
            return tally
        }
        state.withLock { counters in
            for tally in tallies {
                // Mutated in place through the dictionary's `default:` subscript: a copy taken
                // out and written back would copy the latency window (8 KiB) on every turn.
                counters.triggers[tally.key, default: TriggerSnapshot()].record(
                    delivered: tally.latencies, retried: tally.retried, failed: tally.failed)
                counters.update {
                    $0.delivered += tally.latencies.count
                    $0.retried += tally.retried
                    $0.failed += tally.failed
                }
            }
        }
    }

    func recordFlush(size: Int, seconds: Double?) {
        if let seconds {
            metrics.flushSize.record(size)
            metrics.flushDuration.recordNanoseconds(Int64(seconds * 1e9))
        } else {
            metrics.flushErrors.increment()
        }
        state.withLock {
            $0.update {
                if seconds != nil { $0.recorderFlushes += 1 } else { $0.recorderErrors += 1 }
            }
        }
    }

    func recordLeaseExpiredDrops(_ count: Int) {
        metrics.leaseExpiredDrops.increment(by: count)
        state.withLock { $0.update { $0.leaseExpiredDrops += count } }
    }

    func recordDroppedOutcome() {
        metrics.droppedOutcomes.increment()
        state.withLock { $0.update { $0.droppedOutcomes += 1 } }
    }

    func setOldestPendingAge(_ seconds: Double?) {
        state.withLock { $0.update { $0.oldestPendingAgeSeconds = seconds } }
    }

    /// Totals since start, for STATUS= lines and the stats endpoint.
    public func current(inFlight: Int) -> Snapshot {
        metrics.inFlight.record(inFlight)
        return state.withLock { counters in
            var snapshot = counters.total
            snapshot.inFlight = inFlight
            return snapshot
        }
    }

    public func perTrigger() -> [String: TriggerSnapshot] {
        state.withLock { $0.triggers }
    }

    /// The counters since the last call, which starts a new interval; values that describe
    /// the present (oldest pending age) carry over.
    func takeInterval(inFlight: Int) -> Snapshot {
        state.withLock { counters in
            var snapshot = counters.interval
            snapshot.inFlight = inFlight
            counters.interval = Snapshot(oldestPendingAgeSeconds: snapshot.oldestPendingAgeSeconds)
            return snapshot
        }
    }
}
