import Synchronization

/// When a loop last turned. The watchdog pings systemd only while every loop's heartbeat is
/// recent: a loop stuck in a call that never returns stops the pings and systemd restarts
/// the worker, while a loop that turns without a database keeps them going.
final class Heartbeat: Sendable {
    private let last = Mutex(ContinuousClock.now)

    func beat() {
        let now = ContinuousClock.now
        last.withLock { $0 = now }
    }

    func isRecent(within limit: Duration) -> Bool {
        ContinuousClock.now - last.withLock { $0 } < limit
    }
}

/// One shutdown grace for the whole worker: the first component to stop starts the clock,
/// and every later one (delivery, recorder flush) works to the same deadline, so SIGTERM
/// never takes more than `shutdown_grace_seconds` plus the final lease release.
public final class ShutdownDeadline: Sendable {
    private let deadline = Mutex<ContinuousClock.Instant?>(nil)

    public init() {}

    /// Starts the clock if no component has yet; returns the deadline in force.
    @discardableResult
    public func start(grace: Duration) -> ContinuousClock.Instant {
        deadline.withLock { current in
            if let current { return current }
            let value = ContinuousClock.now + grace
            current = value
            return value
        }
    }

    public var hasPassed: Bool {
        deadline.withLock { $0 }.map { ContinuousClock.now >= $0 } ?? false
    }

    /// Time left before the deadline (zero when passed; nil when shutdown has not begun).
    public var remaining: Duration? {
        deadline.withLock { $0 }.map { max(.zero, $0 - ContinuousClock.now) }
    }
}
