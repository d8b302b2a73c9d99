import Foundation

/// Why an attempt produced no usable response, as stored in `invocation_log.error_class`.
public enum DeliveryErrorClass: String, Sendable, Equatable {
    case timeout, connection, dns, tls, `protocol`, `internal`
    /// A scheduled event claimed later than its tolerance allows: recorded, never sent.
    case missed
    /// The event cannot be sent as it stands (a one-off event's header names an environment
    /// variable that is not set): failed at once, because retrying changes nothing.
    case unsendable
    /// A pull consumer answered `nack` (or never answered within its visibility timeout,
    /// which is a `timeout`).
    case nack

    /// Failures decided before any request, which no retry can change.
    public var isFinalBeforeSending: Bool { self == .missed || self == .unsendable }
}

/// What one attempt observed.
public enum AttemptResult: Sendable, Equatable {
    /// A complete response arrived (any status).
    case response(status: Int, retryAfter: String?)
    /// No response: the transfer failed.
    case failure(DeliveryErrorClass, message: String)

    public var isSuccess: Bool {
        if case .response(let status, _) = self { return (200..<300).contains(status) }
        return false
    }
}

/// What happens to the event after an attempt.
public enum RetryDecision: Sendable, Equatable {
    case delivered
    /// Due again after this many seconds.
    case retry(afterSeconds: Double)
    case failed
    /// The receiver disabled the trigger: the event stays pending, due at once, and the
    /// attempt does not count against its retries (it waits for `enable-trigger`).
    case deferred
    /// An ordered trigger's head failed for good under `on_failure: block`: it stays pending
    /// and never due, holding its key, until an operator redelivers or skips it.
    case blocked

    public var status: String {
        switch self {
        case .delivered: "delivered"
        case .retry, .deferred, .blocked: "pending"
        case .failed: "failed"
        }
    }

    /// Whether the event is given up on (failed, or holding its key as blocked): the
    /// failure alert goes out.
    public var isTerminalFailure: Bool { self == .failed || self == .blocked }
}

/// Hasura's retry rules plus Herald's backoff and Retry-After handling. Pure, so the whole
/// schedule is unit-tested without a clock or a network.
public struct RetryPolicy: Sendable {
    public var retry: RetryConfig
    public var backoff: RetryBackoff
    /// A receiver's Retry-After is honoured up to this many seconds.
    public var maxRetryAfterSeconds: Int
    /// What a 410 does, and which statuses fail at once.
    public var onGone = OnGone.disable
    public var nonRetryableStatuses: Set<Int> = []
    /// An ordered trigger with `on_failure: block`: a keyed event that fails for good
    /// blocks its key instead of failing.
    public var blockKeyOnFailure = false

    public init(retry: RetryConfig, backoff: RetryBackoff, maxRetryAfterSeconds: Int) {
        self.retry = retry
        self.backoff = backoff
        self.maxRetryAfterSeconds = maxRetryAfterSeconds
    }

    public init(trigger: TriggerConfig, worker: WorkerSettings) {
        self.init(retry: trigger.retry, backoff: trigger.backoff, maxRetryAfterSeconds: worker.maxRetryAfterSeconds)
        onGone = trigger.protection.onGone
        nonRetryableStatuses = trigger.protection.nonRetryableStatuses
        blockKeyOnFailure = trigger.ordering?.onFailure == .block
    }

    /// Decides after attempt number `attempt` (1 for the first). `random` returns a value in
    /// 0..<1 and drives the jitter.
    public func decide(
        attempt: Int, result: AttemptResult, now: Date, random: () -> Double = { Double.random(in: 0..<1) }
    ) -> RetryDecision {
        if result.isSuccess { return .delivered }
        guard attempt < retry.maxAttempts else { return .failed }
        if case .response(_, let header?) = result, let wait = Self.retryAfterSeconds(header, now: now) {
            return .retry(afterSeconds: min(wait, Double(maxRetryAfterSeconds)))
        }
        return .retry(afterSeconds: delay(afterAttempt: attempt, random: random))
    }

    /// The wait before the next attempt: `interval_sec` every time (Hasura), or doubling
    /// from it with full jitter, capped at `max_interval_sec`.
    public func delay(afterAttempt attempt: Int, random: () -> Double) -> Double {
        let interval = Double(retry.intervalSeconds)
        switch backoff.strategy {
        case .fixed:
            return interval
        case .exponential:
            let exponent = Double(min(attempt - 1, 62))
            let ceiling = min(Double(backoff.maxIntervalSeconds), interval * pow(2, exponent))
            return ceiling * random()
        }
    }

    /// Retry-After as delay-seconds or an HTTP-date (RFC 9110 §10.2.3); nil when unparseable.
    public static func retryAfterSeconds(_ value: String, now: Date) -> Double? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(text) { return seconds >= 0 ? Double(seconds) : nil }
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                return max(0, date.timeIntervalSince(now))
            }
        }
        return nil
    }
}
