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

    public var url: String
    public var headers: [Header]
    public var body: [UInt8]
    public var messageID: String

    public init(event: ClaimedEvent, trigger: TriggerConfig, installation: UUID, timestamp: Int) {
        url = trigger.webhook
        messageID = EventID.uuid(installation: installation, number: event.id)
        body = Array(Self.payload(event: event, trigger: trigger, messageID: messageID).utf8)
        var headers = [
            Header(name: "Content-Type", value: "application/json", isSecret: false),
            Header(name: "User-Agent", value: "herald/\(Herald.version)", isSecret: false),
            Header(name: "webhook-id", value: messageID, isSecret: false),
            Header(name: "webhook-timestamp", value: String(timestamp), isSecret: false),
        ]
        if let signing = trigger.signing {
            headers.append(
                Header(
                    name: "webhook-signature",
                    value: WebhookSignature.sign(key: signing.key, messageID: messageID, timestamp: timestamp, body: body),
                    isSecret: false))
        }
        headers += trigger.headers.map { Header(name: $0.name, value: $0.value, isSecret: $0.source.isSecret) }
        self.headers = headers
    }

    /// Hasura v2's event payload. `event` is spliced in as stored; the rest is escaped here.
    static func payload(event: ClaimedEvent, trigger: TriggerConfig, messageID: String) -> String {
        """
        {"id":\(json(messageID)),"created_at":\(json(event.createdAt)),\
        "table":{"schema":\(json(event.table.schema)),"name":\(json(event.table.name))},\
        "trigger":{"name":\(json(trigger.name))},"event":\(event.payload),\
        "delivery_info":{"max_retries":\(trigger.retry.numRetries),"current_retry":\(event.tries)}}
        """
    }

    /// The headers as recorded in the invocation log, secrets replaced.
    public var recordedHeaders: String {
        "{" + headers.map { "\(Self.json($0.name)):\(Self.json($0.isSecret ? "<redacted>" : $0.value))" }
            .joined(separator: ",") + "}"
    }

    /// A JSON string literal.
    static func json(_ text: String) -> String {
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
