import Foundation
import Synchronization

/// Counters the worker keeps for the periodic fetch-statistics line (and, later, for the
/// stats endpoint). Updated from the claimer and deliverer threads under one small lock.
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

        public var claimSecondsMean: Double { fetches == 0 ? 0 : claimSecondsTotal / Double(fetches) }
    }

    /// Totals since start, and the same counters since the last fetch-stats line.
    private struct Counters {
        var total = Snapshot()
        var interval = Snapshot()

        mutating func update(_ change: (inout Snapshot) -> Void) {
            change(&total)
            change(&interval)
        }
    }

    private let state = Mutex(Counters())

    public init() {}

    func recordFetch(claimed: Int, seconds: Double) {
        state.withLock { $0.update {
            $0.fetches += 1
            if claimed == 0 { $0.emptyFetches += 1 }
            $0.eventsClaimed += claimed
            $0.claimSecondsTotal += seconds
            $0.claimSecondsMax = max($0.claimSecondsMax, seconds)
        } }
    }

    func recordDelivery(trigger: String, outcome: DeliveryOutcome) {
        state.withLock { $0.update {
            switch outcome.decision {
            case .delivered: $0.delivered += 1
            case .retry: $0.retried += 1
            case .failed: $0.failed += 1
            }
        } }
    }

    func recordFlush(succeeded: Bool) {
        state.withLock { $0.update {
            if succeeded { $0.recorderFlushes += 1 } else { $0.recorderErrors += 1 }
        } }
    }

    func setOldestPendingAge(_ seconds: Double?) {
        state.withLock { $0.update { $0.oldestPendingAgeSeconds = seconds } }
    }

    /// Totals since start, for STATUS= lines and the stats endpoint.
    func current(inFlight: Int) -> Snapshot {
        state.withLock { counters in
            var snapshot = counters.total
            snapshot.inFlight = inFlight
            return snapshot
        }
    }

    /// The counters since the last reset, which starts a new interval; totals that describe
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
