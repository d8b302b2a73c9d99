import Synchronization

/// Rung by the claimer whenever its connection hears a capture NOTIFY; a long-polling pull
/// receive waits on it, so new events reach a waiting consumer as they reach the worker.
/// A generation counter: a waiter notes it before looking for events and wakes once it moved,
/// so a NOTIFY between the look and the wait is never missed.
public final class NotificationBell: Sendable {
    private let generation = Atomic<UInt64>(0)

    public init() {}

    public func ring() { generation.add(1, ordering: .relaxed) }

    var current: UInt64 { generation.load(ordering: .relaxed) }

    /// Returns once the bell rang after `since`, or at `deadline`. It checks every 10 ms on a
    /// timer: no thread and no database connection is held while waiting.
    func wait(since: UInt64, until deadline: ContinuousClock.Instant) async {
        while current == since, ContinuousClock.now < deadline {
            try? await Task.sleep(for: min(.milliseconds(10), deadline - ContinuousClock.now))
        }
    }
}
