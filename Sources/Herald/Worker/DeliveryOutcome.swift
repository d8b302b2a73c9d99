import Foundation

/// The result of one attempt, waiting to be recorded. A class, like ``DeliveryJob``: it is
/// passed from the delivery thread through the recorder's queue by reference.
public final class DeliveryOutcome: Sendable {
    public let event: ClaimedEvent
    /// 1 for the first attempt.
    public let attempt: Int
    public let result: AttemptResult
    public let decision: RetryDecision
    /// The request headers as sent; redacted into JSON when recorded (on the recorder's
    /// thread, not the delivery thread).
    public let requestHeaders: [DeliveryRequest.Header]
    /// The start of the response body, already cut to the stored size.
    public let responseBody: String?
    public let durationMilliseconds: Double
    /// Set when the receiver asked for the trigger to be disabled (410, webhook-delivery).
    public let disableTrigger: String?
    /// What this attempt tells the circuit breaker (see ``Verdict/breakerFailure``).
    public let breakerFailure: Bool?
    /// The request's batch id when the event went in a batch (`batch:`).
    public let batchID: String?

    public let statusCode: Int?
    /// http | redirect | timeout | connection | dns | tls | protocol | internal; nil on success.
    public let errorClass: String?
    public let errorMessage: String?

    public init(
        event: ClaimedEvent, attempt: Int, result: AttemptResult, decision: RetryDecision, requestHeaders: [DeliveryRequest.Header],
        responseBody: String?, durationMilliseconds: Double, disableTrigger: String? = nil, breakerFailure: Bool? = nil,
        batchID: String? = nil
    ) {
        self.batchID = batchID
        self.disableTrigger = disableTrigger
        self.breakerFailure = breakerFailure
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
