import Metrics
import Synchronization

/// The stream clients connected now, per trigger: `/stats` (`stream_clients`) and the
/// `herald_stream_clients{trigger}` gauge read it. Also the bound on how many may be.
public final class StreamClients: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    public init() {}

    /// Counts a new client of `trigger`; false (nothing counted) when `limit` are connected.
    func connect(_ trigger: String, limit: Int) -> Bool {
        let admitted: Int? = counts.withLock { counts in
            guard counts.values.reduce(0, +) < limit else { return nil }
            counts[trigger, default: 0] += 1
            return counts[trigger]
        }
        guard let count = admitted else { return false }
        Gauge(label: "herald_stream_clients", dimensions: [("trigger", trigger)]).record(count)
        return true
    }

    func disconnect(_ trigger: String) {
        let count = counts.withLock { counts in
            counts[trigger, default: 1] -= 1
            return counts[trigger] ?? 0
        }
        Gauge(label: "herald_stream_clients", dimensions: [("trigger", trigger)]).record(count)
    }

    /// Whether any client is connected: asked by the claimer every turn, so it copies nothing.
    var hasClients: Bool { counts.withLock { $0.values.contains { $0 > 0 } } }

    /// Clients per trigger, triggers with none left out.
    public var current: [String: Int] { counts.withLock { $0.filter { $0.value > 0 } } }
}
