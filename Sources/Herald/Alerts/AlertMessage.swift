import Foundation

/// One alert as sent: its id and body are made once, so every retry carries the same
/// `webhook-id` and bytes; the timestamp and signature are made per attempt. Pure.
struct AlertMessage: Sendable, Equatable {
    let id: String
    let type: String
    let body: [UInt8]

    /// The body is redacted before it is signed: an alert quotes receivers' errors and
    /// response bodies, which may repeat a secret or a URL with credentials.
    init(_ pending: PendingAlert, id: String = AlertMessage.newID(), redactor: Redactor = .urlsOnly) {
        self.init(id: id, type: pending.alert.type, body: Array(redactor(Self.payload(pending)).utf8))
    }

    init(id: String, type: String, body: [UInt8]) {
        self.id = id
        self.type = type
        self.body = body
    }

    /// `alert_` and a random UUID: unique per alert, so receivers can drop repeats.
    static func newID() -> String { "alert_" + UUID().uuidString.lowercased() }

    /// The Standard Webhooks payload shape, data keys sorted so equal alerts give equal bytes.
    static func payload(_ pending: PendingAlert) -> String {
        let data = pending.alert.data.sorted { $0.key < $1.key }
            .map { "\(DeliveryRequest.json($0.key)):\($0.value.json)" }
            .joined(separator: ",")
        let timestamp = Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(pending.occurredAt)
        return #"{"type":\#(DeliveryRequest.json(pending.alert.type)),"timestamp":"\#(timestamp)","data":{\#(data)}}"#
    }

    /// The headers of one attempt made at `timestamp` (unix seconds), as for deliveries:
    /// Herald's, then Standard Webhooks', then the configured ones.
    func headers(timestamp: Int, config: AlertsConfig) -> [DeliveryRequest.Header] {
        var headers = [
            DeliveryRequest.Header(name: "Content-Type", value: "application/json", isSecret: false),
            DeliveryRequest.Header(name: "User-Agent", value: DeliveryRequest.userAgent, isSecret: false),
            DeliveryRequest.Header(name: "webhook-id", value: id, isSecret: false),
            DeliveryRequest.Header(name: "webhook-timestamp", value: String(timestamp), isSecret: false),
        ]
        if let signing = config.signing {
            headers.append(
                DeliveryRequest.Header(
                    name: "webhook-signature",
                    value: WebhookSignature.sign(key: signing.key, messageID: id, timestamp: timestamp, body: body),
                    isSecret: false))
        }
        headers += config.headers.map {
            DeliveryRequest.Header(name: $0.name, value: $0.value, isSecret: $0.source.isSecret)
        }
        return headers
    }
}
