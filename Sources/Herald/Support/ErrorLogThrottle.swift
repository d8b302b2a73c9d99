/// Decides whether a repeated error is logged: the first occurrence of each distinct error
/// at once, then at most once per `interval` with the number of repeats suppressed in
/// between. A database that rejects every query must not fill the journal (issue: 1,247
/// warnings in 4 s). Pure; the caller passes the time.
struct ErrorLogThrottle {
    let interval: Duration
    private var entries: [String: (lastLogged: ContinuousClock.Instant, suppressed: Int)] = [:]

    init(interval: Duration = .seconds(30)) {
        self.interval = interval
    }

    /// Returns nil when this occurrence should not be logged; otherwise how many identical
    /// errors were suppressed since the last time it was.
    mutating func admit(_ key: String, now: ContinuousClock.Instant) -> Int? {
        guard let entry = entries[key] else {
            if entries.count >= Self.capacity { entries.removeAll() }
            entries[key] = (now, 0)
            return 0
        }
        if now - entry.lastLogged >= interval {
            entries[key] = (now, 0)
            return entry.suppressed
        }
        entries[key] = (entry.lastLogged, entry.suppressed + 1)
        return nil
    }

    /// Distinct errors remembered (at most ``capacity``).
    var trackedCount: Int { entries.count }
    static let capacity = 64

    /// Forgets every error: the next occurrence of any is logged at once (after recovery).
    mutating func reset() {
        entries.removeAll()
    }
}
