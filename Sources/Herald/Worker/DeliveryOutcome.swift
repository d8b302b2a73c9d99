import Foundation

/// The result of one attempt, waiting to be recorded.
public struct DeliveryOutcome: Sendable {
    public var event: ClaimedEvent
    /// 1 for the first attempt.
    public var attempt: Int
    public var result: AttemptResult
    public var decision: RetryDecision
    /// JSON object of the request headers, secrets redacted.
    public var requestHeaders: String
    /// The start of the response body, already cut to the stored size.
    public var responseBody: String?
    public var durationMilliseconds: Double

    public var statusCode: Int? {
        if case .response(let status, _) = result { return status }
        return nil
    }

    public var errorClass: String? {
        switch result {
        case .response(let status, _):
            if (200..<300).contains(status) { return nil }
            return (300..<400).contains(status) ? "redirect" : "http"
        case .failure(let errorClass, _):
            return errorClass.rawValue
        }
    }

    public var errorMessage: String? {
        switch result {
        case .response(let status, _):
            if (200..<300).contains(status) { return nil }
            return (300..<400).contains(status) ? "HTTP \(status): redirects are not followed" : "HTTP \(status)"
        case .failure(_, let message):
            return message
        }
    }
}
