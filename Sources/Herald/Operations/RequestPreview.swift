import Foundation

/// What `herald preview-request` prints: the request a delivery would send (method, URL,
/// headers, body) after the trigger's transform, built by the delivery code itself and
/// never sent. Secret header values are redacted as in invocation rows.
public struct RequestPreview: Sendable, Equatable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    /// Nil when no body is sent.
    public var body: String?
    /// Set when the transform fails on this input: the attempt would be recorded as this
    /// error, nothing sent.
    public var failure: String?

    public static func == (lhs: RequestPreview, rhs: RequestPreview) -> Bool {
        lhs.method == rhs.method && lhs.url == rhs.url && lhs.body == rhs.body && lhs.failure == rhs.failure
            && lhs.headers.elementsEqual(rhs.headers) { $0.name == $1.name && $0.value == $1.value }
    }

    /// The request for a prepared delivery, as if sent at `timestamp`.
    public init(prepared: DeliveryRequest.Prepared, trigger: TriggerConfig, timestamp: Int) {
        let request = DeliveryRequest(prepared: prepared, timestamp: timestamp)
        method = request.method.rawValue
        // A webhook from the environment may carry credentials anywhere in it.
        url = trigger.webhookSource.isSecret ? Redaction.url(request.url) : request.url
        headers = request.headers.map { ($0.name, $0.isSecret ? Redaction.placeholder : $0.value) }
        body = request.sendsBody ? String(decoding: request.body, as: UTF8.self) : nil
        failure = prepared.transformFailure
    }

    /// `payload` (any JSON) as `$body`, the way `--payload FILE` supplies it.
    public static func forPayload(_ payload: [UInt8], trigger: TriggerConfig, timestamp: Int) -> RequestPreview {
        let prepared = DeliveryRequest.Prepared(payload: payload, trigger: trigger, messageID: "msg_preview")
        return RequestPreview(prepared: prepared, trigger: trigger, timestamp: timestamp)
    }

    /// The request the next attempt of stored event `text` (a payload id, an imported
    /// Hasura id or an event number) would send; nil when there is no such event.
    public static func forEvent(
        _ text: String, trigger: TriggerConfig, admin: EventAdmin, timestamp: Int
    ) throws -> RequestPreview? {
        guard let number = try admin.number(for: text),
            var event = try EventBrowser(admin).detail(number)?.event
        else { return nil }
        guard event.triggerName == trigger.name else {
            throw PreviewError(message: "event \(text) belongs to trigger '\(event.triggerName)', not '\(trigger.name)'")
        }
        event.importedID = try admin.publicID(number)
        var sent = trigger
        if trigger.schedule != nil {
            // A cron tick or one-off event carries its scheduled time (and a one-off event its
            // own webhook and payload), as when the worker claims it.
            sent = ScheduledEventDecoder.decode(
                event, route: trigger, now: Date(), environment: ProcessInfo.processInfo.environment,
                leaseSeconds: Int(Int32.max)
            ).trigger
        }
        let prepared = DeliveryRequest.Prepared(event: event, trigger: sent, installation: admin.key)
        return RequestPreview(prepared: prepared, trigger: sent, timestamp: timestamp)
    }

    /// The request as text: request line, headers, a blank line and the body.
    public var text: String {
        var lines = ["\(method) \(url)"]
        lines += headers.map { "\($0.name): \($0.value)" }
        lines.append("")
        lines.append(body ?? "(no body)")
        if let failure { lines.append("\nnot sent: \(failure)") }
        return lines.joined(separator: "\n")
    }
}

/// Why a preview cannot be made.
public struct PreviewError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
