import Foundation

/// The result of one attempt, waiting to be recorded.
public struct DeliveryOutcome: Sendable {
    public var event: ClaimedEvent
    /// 1 for the first attempt.
    public var attempt: Int
    public var result: AttemptResult
    public var decision: RetryDecision
    /// The request headers as sent; redacted into JSON when recorded (on the recorder's
    /// thread, not the delivery thread).
    public var requestHeaders: [DeliveryRequest.Header]
    /// The start of the response body, already cut to the stored size.
    public var responseBody: String?
    public var durationMilliseconds: Double

    public let statusCode: Int?
    /// http | redirect | timeout | connection | dns | tls | protocol | internal; nil on success.
    public let errorClass: String?
    public let errorMessage: String?

    public init(
        event: ClaimedEvent, attempt: Int, result: AttemptResult, decision: RetryDecision, requestHeaders: [DeliveryRequest.Header],
        responseBody: String?, durationMilliseconds: Double
    ) {
        self.event = event
        self.attempt = attempt
        self.result = result
        self.decision = decision
        self.requestHeaders = requestHeaders
        self.responseBody = responseBody
        self.durationMilliseconds = durationMilliseconds
        // Derived once here and stored: deriving them inside the recorder's batch builder
        // crashed the Swift 6.3 optimizer (ownership verifier) in release builds.
        switch result {
        case .response(let status, _):
            statusCode = status
            if (200..<300).contains(status) {
                errorClass = nil
                errorMessage = nil
            } else if (300..<400).contains(status) {
                errorClass = "redirect"
                errorMessage = "HTTP \(status): redirects are not followed"
            } else {
                errorClass = "http"
                errorMessage = "HTTP \(status)"
            }
        case .failure(let failure, let message):
            statusCode = nil
            errorClass = failure.rawValue
            errorMessage = message
        }
    }
}
