import Foundation

/// One HTTP request for one attempt of one event: Hasura's payload and the Standard
/// Webhooks headers. Pure: the same inputs give the same bytes.
public struct DeliveryRequest: Sendable {
    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: String
        /// Secret values are stored as "<redacted>" in invocation rows.
        public var isSecret: Bool
    }

    /// The parts of a request that do not depend on the attempt's time: made on the
    /// claimer's thread so the delivery thread, the busiest in Herald, only adds the
    /// timestamp and signature.
    public struct Prepared: Sendable {
        public var url: String
        public var messageID: String
        public var body: [UInt8]
        /// Headers after webhook-id; the signature (if any) and the timestamp go before them.
        public var configuredHeaders: [Header]
        public var signingKey: [UInt8]?

        public init(event: ClaimedEvent, trigger: TriggerConfig, installation: EventIDKey) {
            url = trigger.webhook
            messageID = event.importedID ?? EventID.uuid(key: installation, number: event.id)
            body = Array(DeliveryRequest.payload(event: event, trigger: trigger, messageID: messageID).utf8)
            configuredHeaders = trigger.headers.map {
                Header(name: $0.name, value: $0.value, isSecret: $0.isSecret)
            }
            signingKey = trigger.signing?.key
        }
    }

    public var url: String
    public var headers: [Header]
    public var body: [UInt8]
    public var messageID: String

    public init(event: ClaimedEvent, trigger: TriggerConfig, installation: EventIDKey, timestamp: Int) {
        self.init(prepared: Prepared(event: event, trigger: trigger, installation: installation), timestamp: timestamp)
    }

    public init(prepared: Prepared, timestamp: Int) {
        url = prepared.url
        messageID = prepared.messageID
        body = prepared.body
        var headers = [
            Header(name: "Content-Type", value: "application/json", isSecret: false),
            Header(name: "User-Agent", value: Self.userAgent, isSecret: false),
            Header(name: "webhook-id", value: messageID, isSecret: false),
            Header(name: "webhook-timestamp", value: String(timestamp), isSecret: false),
        ]
        if let key = prepared.signingKey {
            headers.append(
                Header(
                    name: "webhook-signature",
                    value: WebhookSignature.sign(key: key, messageID: messageID, timestamp: timestamp, body: body),
                    isSecret: false))
        }
        headers += prepared.configuredHeaders
        self.headers = headers
    }

    static let userAgent = "herald/\(Herald.version)"

    /// Hasura v2's event payload. `event` is spliced in as stored; the rest is escaped here.
    static func payload(event: ClaimedEvent, trigger: TriggerConfig, messageID: String) -> String {
        if let scheduled = trigger.schedule { return scheduledPayload(scheduled, trigger: trigger, messageID: messageID) }
        return """
        {"id":\(json(messageID)),"created_at":\(json(createdAt(event, trigger.createdAtFormat))),\
        "table":{"schema":\(json(event.table.schema)),"name":\(json(event.table.name))},\
        "trigger":{"name":\(json(trigger.name))},"event":\(event.payload),\
        "delivery_info":{"max_retries":\(trigger.retry.numRetries),"current_retry":\(event.tries)}}
        """
    }

    /// Hasura's scheduled-event body: `{scheduled_time, payload, name, id, comment}`; `name`
    /// only for cron triggers and `comment` only when there is one, as Hasura omits them.
    static func scheduledPayload(_ scheduled: ScheduledDelivery, trigger: TriggerConfig, messageID: String) -> String {
        var body = "{\"scheduled_time\":\(json(scheduled.scheduledTime ?? "")),\"payload\":\(scheduled.payloadJSON)"
        if scheduled.cronSchedule != nil { body += ",\"name\":\(json(trigger.name))" }
        body += ",\"id\":\(json(messageID))"
        if let comment = trigger.comment { body += ",\"comment\":\(json(comment))" }
        return body + "}"
    }

    /// Herald's `…Z` form, or Hasura's without an offset (`payload_compat.created_at: hasura`).
    static func createdAt(_ event: ClaimedEvent, _ format: CreatedAtFormat) -> String {
        format == .hasura && event.createdAt.hasSuffix("Z") ? String(event.createdAt.dropLast()) : event.createdAt
    }

    /// The headers as recorded in the invocation log, secrets replaced.
    public var recordedHeaders: String { Self.recordedJSON(headers) }

    /// A JSON object of `headers` with secret values replaced by "<redacted>".
    public static func recordedJSON(_ headers: [Header]) -> String {
        "{" + headers.map { "\(json($0.name)):\(json($0.isSecret ? "<redacted>" : $0.value))" }
            .joined(separator: ",") + "}"
    }

    /// A JSON string literal.
    static func json(_ text: String) -> String {
        // Fast path: most names and ids need no escaping at all.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return "\"" + text + "\""
        }
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
