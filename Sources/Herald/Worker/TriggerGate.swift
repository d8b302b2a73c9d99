/// A token bucket: `rate` tokens a second, at most `burst` held. Pure; time is passed in.
/// For a shared limit the bucket has no refill of its own: tokens are granted in blocks by
/// PostgreSQL (``EventStore/reserveTokens``) and only spent here.
public struct TokenBucket: Sendable, Equatable {
    public let rate: Double
    public let burst: Double
    public private(set) var tokens: Double
    private var refilledAt: ContinuousClock.Instant
    let refills: Bool

    public init(rate: Double, burst: Double, now: ContinuousClock.Instant, refills: Bool = true) {
        self.rate = rate
        self.burst = burst
        tokens = refills ? burst : 0
        refilledAt = now
        self.refills = refills
    }

    mutating func refill(now: ContinuousClock.Instant) {
        guard refills, now > refilledAt else { return }
        tokens = min(burst, tokens + (now - refilledAt).seconds * rate)
        refilledAt = now
    }

    /// Whole tokens available now.
    mutating func available(now: ContinuousClock.Instant) -> Int {
        refill(now: now)
        return Int(tokens.rounded(.down))
    }

    /// Whole tokens there would be at `now`, without refilling: for questions that must not
    /// change the bucket.
    func tokens(at now: ContinuousClock.Instant) -> Int {
        var copy = self
        return copy.available(now: now)
    }

    mutating func take(_ count: Int) {
        tokens = max(0, tokens - Double(count))
    }

    mutating func grant(_ count: Int) {
        tokens += Double(count)
    }

    /// Tokens taken for a claim that did not use them: a refilling bucket never holds more
    /// than its burst (it may have refilled meanwhile); a shared one's were granted.
    mutating func refund(_ count: Int) {
        guard count > 0 else { return }
        tokens = refills ? min(burst, tokens + Double(count)) : tokens + Double(count)
    }

    /// When the next whole token is there (nil for a shared bucket, which waits for grants).
    func nextToken(after now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        guard refills, rate > 0 else { return nil }
        let missing = max(0, 1 - tokens)
        return now + .seconds(missing / rate)
    }
}

/// A circuit breaker over a sliding window of one-second buckets (Convoy's model). Closed:
/// everything flows, outcomes are counted; when at least `min_requests` in the window failed
/// at `failure_ratio` or more it opens. Open: nothing of the trigger is claimed for
/// `open_sec`. Half-open: one probe is claimed; its outcome closes or re-opens the breaker.
public struct CircuitBreaker: Sendable {
    public enum State: Sendable, Equatable {
        case closed
        case open(until: ContinuousClock.Instant)
        case halfOpen(probeInFlight: Bool)

        /// 0 closed, 1 open, 2 half-open: the `herald_circuit_state` gauge.
        public var gaugeValue: Int {
            switch self {
            case .closed: 0
            case .open: 1
            case .halfOpen: 2
            }
        }

        public var name: String {
            switch self {
            case .closed: "closed"
            case .open: "open"
            case .halfOpen: "half_open"
            }
        }
    }

    /// What the window held when the breaker opened, for logs and alerts.
    public struct Reading: Sendable, Equatable {
        public var requests: Int
        public var failures: Int
        /// The breaker re-opened because its half-open probe failed, not on the window.
        public var probeFailed = false
        public var ratio: Double { requests == 0 ? 0 : Double(failures) / Double(requests) }
    }

    public enum Transition: Sendable, Equatable {
        case opened(Reading)
        case halfOpened
        case closed
    }

    public let config: CircuitBreakerConfig
    public private(set) var state = State.closed
    private var buckets: [WindowBucket] = []

    private struct WindowBucket: Sendable {
        var second: Int64
        var requests: Int
        var failures: Int
    }
    private let origin: ContinuousClock.Instant

    public init(config: CircuitBreakerConfig, now: ContinuousClock.Instant) {
        self.config = config
        origin = now
    }

    private func second(_ now: ContinuousClock.Instant) -> Int64 { (now - origin).components.seconds }

    /// The window's totals at `now`.
    public func reading(now: ContinuousClock.Instant) -> Reading {
        let oldest = second(now) - Int64(config.windowSeconds) + 1
        var reading = Reading(requests: 0, failures: 0)
        for bucket in buckets where bucket.second >= oldest {
            reading.requests += bucket.requests
            reading.failures += bucket.failures
        }
        return reading
    }

    /// Moves an expired open state to half-open; call before asking what may be claimed.
    mutating func advance(now: ContinuousClock.Instant) -> Transition? {
        if case .open(let until) = state, now >= until {
            state = .halfOpen(probeInFlight: false)
            return .halfOpened
        }
        return nil
    }

    /// How many events may be claimed now: nil for no limit, 0 for none, 1 for the probe.
    func claimAllowance() -> Int? {
        switch state {
        case .closed: nil
        case .open: 0
        case .halfOpen(let probeInFlight): probeInFlight ? 0 : 1
        }
    }

    /// A claim for the trigger returned `count` events.
    mutating func claimed(_ count: Int) {
        if case .halfOpen = state { state = .halfOpen(probeInFlight: count > 0) }
    }

    /// The probe was never sent (dropped at its deadline or at shutdown): another may go.
    mutating func probeAbandoned() {
        if case .halfOpen = state { state = .halfOpen(probeInFlight: false) }
    }

    /// Counts one outcome. `failure` is nil for outcomes that say nothing about the receiver.
    mutating func record(failure: Bool, now: ContinuousClock.Instant) -> Transition? {
        switch state {
        case .open:
            // A request sent before the breaker opened: the decision is already made.
            return nil
        case .halfOpen:
            if failure {
                state = .open(until: now + .seconds(config.openSeconds))
                return .opened(Reading(requests: 1, failures: 1, probeFailed: true))
            }
            state = .closed
            buckets.removeAll()
            return .closed
        case .closed:
            let current = second(now)
            if let last = buckets.last, last.second == current {
                buckets[buckets.count - 1].requests += 1
                buckets[buckets.count - 1].failures += failure ? 1 : 0
            } else {
                buckets.append(WindowBucket(second: current, requests: 1, failures: failure ? 1 : 0))
            }
            let oldest = current - Int64(config.windowSeconds) + 1
            if let first = buckets.first, first.second < oldest {
                buckets.removeAll { $0.second < oldest }
            }
            // A success cannot open the breaker: a healthy receiver costs one counter increment
            // per outcome, not a pass over the window.
            guard failure else { return nil }
            let window = reading(now: now)
            guard window.requests >= config.minimumRequests, window.ratio >= config.failureRatio else { return nil }
            state = .open(until: now + .seconds(config.openSeconds))
            return .opened(window)
        }
    }
}

/// Everything that may hold back one trigger's events in this worker: its rate limit, its
/// circuit breaker, and whether it is disabled (by an operator, a receiver or
/// `disable_after`). Pure; owned by ``FlowControl``.
struct TriggerGate: Sendable {
    var bucket: TokenBucket?
    var breaker: CircuitBreaker?
    var disabled = false
    /// Failing without a 2xx since this instant (for `disable_after`).
    var failingSince: ContinuousClock.Instant?
    let disableAfter: Duration?
    /// When a shared bucket may next ask PostgreSQL for tokens (after a refusal).
    var nextGrantRequest: ContinuousClock.Instant?

    init(protection: TriggerProtection, now: ContinuousClock.Instant) {
        if let rate = protection.rateLimit {
            bucket = TokenBucket(rate: rate.perSecond, burst: rate.burst, now: now, refills: !rate.shared)
        }
        breaker = protection.circuitBreaker.map { CircuitBreaker(config: $0, now: now) }
        disableAfter = protection.disableAfterSeconds.map { .seconds($0) }
    }

    var isShared: Bool { bucket.map { !$0.refills } ?? false }
}
