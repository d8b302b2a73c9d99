/// `rate_limit:` on a trigger: a token bucket of `per_second` refilled tokens holding at most
/// `burst`. Deferred events are not attempts: they are simply claimed later.
public struct RateLimitConfig: Sendable, Equatable {
    public var perSecond: Double
    public var burst: Double
    /// Coordinated through PostgreSQL across every worker, instead of per worker.
    public var shared = false

    public init(perSecond: Double, burst: Double? = nil, shared: Bool = false) {
        self.perSecond = perSecond
        self.burst = burst ?? max(1, perSecond)
        self.shared = shared
    }
}

/// `circuit_breaker:` on a trigger (Convoy's defaults). A failure is a timeout, a connection
/// error, a 5xx or a 429; other responses mean the receiver is up.
public struct CircuitBreakerConfig: Sendable, Equatable {
    public var failureRatio = 0.7
    public var minimumRequests = 10
    public var windowSeconds = 60
    public var openSeconds = 30

    public init(failureRatio: Double = 0.7, minimumRequests: Int = 10, windowSeconds: Int = 60, openSeconds: Int = 30) {
        self.failureRatio = failureRatio
        self.minimumRequests = minimumRequests
        self.windowSeconds = windowSeconds
        self.openSeconds = openSeconds
    }
}

/// What a `410 Gone` does (`on_gone:`).
public enum OnGone: String, Sendable, Equatable, CaseIterable {
    /// Disable the trigger; its events stay pending until `herald enable-trigger`.
    case disable
    /// Fail this event only.
    case fail
    /// Treat it as any other 4xx.
    case retry
}

/// How a trigger protects its receiver and lets the receiver protect itself.
public struct TriggerProtection: Sendable, Equatable {
    public var rateLimit: RateLimitConfig?
    /// On unless `circuit_breaker: false`.
    public var circuitBreaker: CircuitBreakerConfig? = CircuitBreakerConfig()
    public var onGone = OnGone.disable
    /// Statuses that fail the event at once (`retry_conf.non_retryable_statuses`).
    public var nonRetryableStatuses: Set<Int> = []
    /// Disable the trigger after this long without a success while failing (`disable_after`).
    public var disableAfterSeconds: Int?

    public init() {}
}
