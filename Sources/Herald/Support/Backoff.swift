/// Reconnect pacing: doubles from `initial` to `maximum`, reset after a success.
struct ReconnectBackoff {
    let initial: Duration
    let maximum: Duration
    private(set) var current: Duration

    init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5)) {
        self.initial = initial
        self.maximum = maximum
        current = initial
    }

    /// The wait before the next try; each call doubles the one after.
    mutating func next() -> Duration {
        defer { current = min(current * 2, maximum) }
        return current
    }

    mutating func reset() {
        current = initial
    }
}
