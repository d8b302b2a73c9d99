import Foundation

/// The `webhook-delivery` response header (Standard Webhooks / Svix conventions): a receiver
/// may tell the sender to give up on this message or to stop sending altogether.
public enum ReceiverDirective: String, Sendable, Equatable {
    case abortMessage = "abort-message"
    case disable

    public init?(header: String?) {
        guard let value = header?.trimmingCharacters(in: .whitespaces).lowercased() else { return nil }
        self.init(rawValue: value)
    }
}

/// Everything an attempt's result means: the event's next state, whether the trigger must be
/// disabled, and what it tells the circuit breaker.
public struct Verdict: Sendable, Equatable {
    public var decision: RetryDecision
    /// Why the trigger must be disabled, when the receiver asked for it.
    public var disableTrigger: String?
    /// True for a timeout, a connection error, a 5xx or a 429; false for any other answer;
    /// nil when the attempt says nothing about the receiver (Herald's own failure).
    public var breakerFailure: Bool?
}

extension RetryPolicy {
    /// The full verdict on an attempt: the receiver's stop signals (`410 Gone`,
    /// `webhook-delivery`, non-retryable statuses) first, then the retry schedule.
    ///
    /// `keyed`: the event has an ordering key; a final failure then blocks the key when the
    /// trigger says `on_failure: block` (the same rules decide what "final" is).
    public func verdict(
        attempt: Int, result: AttemptResult, directive: ReceiverDirective?, now: Date, keyed: Bool = false,
        random: () -> Double = { Double.random(in: 0..<1) }
    ) -> Verdict {
        var verdict = unorderedVerdict(attempt: attempt, result: result, directive: directive, now: now, random: random)
        if keyed, blockKeyOnFailure, verdict.decision == .failed { verdict.decision = .blocked }
        return verdict
    }

    private func unorderedVerdict(
        attempt: Int, result: AttemptResult, directive: ReceiverDirective?, now: Date, random: () -> Double
    ) -> Verdict {
        if case .failure(let failure, _) = result, failure.isFinalBeforeSending {
            return Verdict(decision: .failed, breakerFailure: nil)
        }
        let breakerFailure = Self.isBreakerFailure(result)
        if directive == .disable {
            let reason = "receiver answered webhook-delivery: disable"
            return Verdict(
                decision: result.isSuccess ? .delivered : .deferred, disableTrigger: reason, breakerFailure: breakerFailure)
        }
        if result.isSuccess { return Verdict(decision: .delivered, breakerFailure: false) }
        if directive == .abortMessage {
            return Verdict(decision: .failed, breakerFailure: breakerFailure)
        }
        if case .response(let status, _) = result {
            if status == 410 {
                switch onGone {
                case .disable:
                    return Verdict(decision: .deferred, disableTrigger: "receiver answered 410 Gone", breakerFailure: false)
                case .fail:
                    return Verdict(decision: .failed, breakerFailure: false)
                case .retry:
                    break
                }
            }
            if nonRetryableStatuses.contains(status) {
                return Verdict(decision: .failed, breakerFailure: breakerFailure)
            }
        }
        return Verdict(
            decision: decide(attempt: attempt, result: result, now: now, random: random), breakerFailure: breakerFailure)
    }

    /// What counts against the circuit breaker: the receiver is down or overloaded.
    static func isBreakerFailure(_ result: AttemptResult) -> Bool? {
        switch result {
        case .response(let status, _):
            return status >= 500 || status == 429
        case .failure(let failure, _):
            return failure == .internal || failure.isFinalBeforeSending ? nil : true
        }
    }
}
