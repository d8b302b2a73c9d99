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
    /// timestamp and signature. A trigger's `request_transform` is applied here.
    public struct Prepared: Sendable {
        public var method: RequestTransform.Method = .POST
        public var url: String
        public var messageID: String
        public var body: [UInt8]
        /// False when the transform removes the body: nothing is sent, not even an empty one.
        public var sendsBody = true
        /// Nil when no `Content-Type` is sent (a removed body).
        public var contentType: String? = "application/json"
        /// Headers after webhook-id; the signature (if any) and the timestamp go before them.
        public var configuredHeaders: [Header]
        public var signingKey: [UInt8]?
        /// Lowercased names of Herald's own headers not to send: removed by the transform,
        /// or replaced by one of its `add_headers`.
        public var overriddenHeaders: Set<String> = []
        /// Why the transform could not be applied to this event (Kriti's message); the
        /// request is then the untransformed one and must not be sent.
        public var transformFailure: String?

        public init(event: ClaimedEvent, trigger: TriggerConfig, installation: EventIDKey) {
            self.init(event: event, trigger: trigger, installation: installation, configuredHeaders: nil)
        }

        /// With the route's header list, made once per trigger.
        init(event: ClaimedEvent, route: TriggerRoute, installation: EventIDKey) {
            self.init(
                event: event, trigger: route.trigger, installation: installation, configuredHeaders: route.configuredHeaders)
        }

        private init(
            event: ClaimedEvent, trigger: TriggerConfig, installation: EventIDKey, configuredHeaders: [Header]?
        ) {
            let messageID = event.importedID ?? EventID.uuid(key: installation, number: event.id)
            self.init(
                payload: DeliveryRequest.payloadBytes(event: event, trigger: trigger, messageID: messageID),
                trigger: trigger, messageID: messageID, configuredHeaders: configuredHeaders)
        }

        /// The request for `payload` (Herald's payload JSON, or any JSON `preview-request`
        /// is given), with the trigger's transform applied. `configuredHeaders`, when given,
        /// is ``configuredHeaders(_:)`` of the trigger, made once.
        public init(payload: [UInt8], trigger: TriggerConfig, messageID: String, configuredHeaders: [Header]? = nil) {
            url = trigger.webhook
            self.messageID = messageID
            body = payload
            self.configuredHeaders = configuredHeaders ?? Self.configuredHeaders(trigger)
            signingKey = trigger.signing?.key
            if let transform = trigger.requestTransform { apply(transform, webhook: trigger.webhook) }
        }

        /// The trigger's `headers:` as requests carry them.
        static func configuredHeaders(_ trigger: TriggerConfig) -> [Header] {
            trigger.headers.map { Header(name: $0.name, value: $0.value, isSecret: $0.isSecret) }
        }

        private mutating func apply(_ transform: RequestTransform, webhook: String) {
            let applied: RequestTransform.Applied
            do {
                // Herald's payload is always JSON; `preview-request --payload` checks its file.
                let value = (try? KritiValue(json: body)) ?? .null
                var session = KritiValue.null
                if case .object(let root) = value, case .object(let event)? = root["event"] {
                    session = event["session_variables"] ?? .null
                }
                applied = try transform.apply(body: value, payload: body, baseURL: webhook, sessionVariables: session)
            } catch {
                transformFailure = "request transform failed in \(error)"
                return
            }
            if transform.url != nil || transform.queryParams != nil, !Self.isSendable(applied.url) {
                // curl would refuse it as malformed, and it would be retried as if the receiver failed.
                transformFailure =
                    "request transform made a URL that cannot be sent (not http(s) with a host, or a character "
                    + "that must be escaped: use escapeUri): \(Redaction.url(applied.url))"
                return
            }
            method = applied.method
            url = applied.url
            body = applied.body ?? []
            sendsBody = applied.body != nil
            contentType = applied.contentType
            let overridden = transform.overriddenHeaders
            overriddenHeaders = overridden
            configuredHeaders.removeAll { overridden.contains($0.name.lowercased()) }
            configuredHeaders += applied.addedHeaders.map {
                Header(name: $0.name, value: $0.value, isSecret: Redaction.isSensitiveHeader($0.name))
            }
        }

        /// An http(s) URL with a host, every character one RFC 3986 allows unescaped (curl
        /// refuses a space; Foundation would quietly escape it).
        private static func isSendable(_ url: String) -> Bool {
            let allowedPunctuation = Set("-._~:/?#[]@!$&'()*+,;=%".utf8)
            guard
                url.utf8.allSatisfy({ byte in
                    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                        || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                        || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || allowedPunctuation.contains(byte)
                }),
                let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
                scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
            else { return false }
            return true
        }
    }

    public var method: RequestTransform.Method
    public var url: String
    public var headers: [Header]
    public var body: [UInt8]
    public var sendsBody: Bool
    public var messageID: String

    public init(event: ClaimedEvent, trigger: TriggerConfig, installation: EventIDKey, timestamp: Int) {
        self.init(prepared: Prepared(event: event, trigger: trigger, installation: installation), timestamp: timestamp)
    }

    public init(prepared: Prepared, timestamp: Int) {
        method = prepared.method
        url = prepared.url
        messageID = prepared.messageID
        body = prepared.body
        sendsBody = prepared.sendsBody
        var headers: [Header] = []
        headers.reserveCapacity(5 + prepared.configuredHeaders.count)
        if let contentType = prepared.contentType {
            headers.append(Header(name: "Content-Type", value: contentType, isSecret: false))
        }
        headers += [
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
        if !prepared.overriddenHeaders.isEmpty {
            headers.removeAll { prepared.overriddenHeaders.contains($0.name.lowercased()) }
        }
        headers += prepared.configuredHeaders
        self.headers = headers
    }

    static let userAgent = "herald/\(Herald.version)"

    /// Hasura v2's event payload. `event` is spliced in as stored; the rest is escaped here.
    static func payload(event: ClaimedEvent, trigger: TriggerConfig, messageID: String) -> String {
        String(decoding: payloadBytes(event: event, trigger: trigger, messageID: messageID), as: UTF8.self)
    }

    /// ``payload(event:trigger:messageID:)`` as the bytes a request sends, written into one
    /// buffer sized up front: the claimer makes one per event, and building a String by
    /// interpolation and then copying its bytes out cost twice the allocations.
    static func payloadBytes(event: ClaimedEvent, trigger: TriggerConfig, messageID: String) -> [UInt8] {
        if let scheduled = trigger.schedule {
            return Array(scheduledPayload(scheduled, trigger: trigger, messageID: messageID).utf8)
        }
        let createdAt = createdAt(event, trigger.createdAtFormat)
        var out: [UInt8] = []
        out.reserveCapacity(
            160 + messageID.utf8.count + createdAt.utf8.count + event.table.schema.utf8.count + event.table.name.utf8.count
                + trigger.name.utf8.count + event.payload.utf8.count)
        func raw(_ text: StaticString) {
            out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        }
        raw(#"{"id":"#)
        appendJSON(messageID, to: &out)
        raw(#","created_at":"#)
        appendJSON(createdAt, to: &out)
        raw(#","table":{"schema":"#)
        appendJSON(event.table.schema, to: &out)
        raw(#","name":"#)
        appendJSON(event.table.name, to: &out)
        raw(#"},"trigger":{"name":"#)
        appendJSON(trigger.name, to: &out)
        raw(#"},"event":"#)
        out.append(contentsOf: event.payload.utf8)
        raw(#","delivery_info":{"max_retries":"#)
        out.append(contentsOf: String(trigger.retry.numRetries).utf8)
        raw(#","current_retry":"#)
        out.append(contentsOf: String(event.tries).utf8)
        raw("}}")
        return out
    }

    /// A batch's body: `{"events":[…]}` around payloads that are each what one event's
    /// request would carry.
    static func batchBody(_ payloads: [[UInt8]]) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(payloads.reduce(13) { $0 + $1.count + 1 })
        body += Array(#"{"events":["#.utf8)
        for (index, payload) in payloads.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body += payload
        }
        body += Array("]}".utf8)
        return body
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

    /// A header's value as recorded: secret values replaced by "<redacted>". The one place
    /// that decides what an attempt row shows: the recorder writes these
    /// (``PGArray/headerObjectsLiteral(_:)``), and ``recordedJSON(_:)`` is their JSON.
    static func recordedValue(_ header: Header) -> String {
        header.isSecret ? "<redacted>" : header.value
    }

    /// A JSON object of the headers as recorded (``recordedValue(_:)``).
    public static func recordedJSON(_ headers: [Header]) -> String {
        var out = "{"
        for (index, header) in headers.enumerated() {
            if index > 0 { out += "," }
            appendJSON(header.name, to: &out)
            out += ":"
            appendJSON(recordedValue(header), to: &out)
        }
        return out + "}"
    }

    /// A JSON string literal.
    static func json(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count + 2)
        appendJSON(text, to: &out)
        return out
    }

    /// Appends `text` as a JSON string literal, as bytes.
    static func appendJSON(_ text: String, to out: inout [UInt8]) {
        let copied = withPlainUTF8(text) { bytes in
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: bytes)
            out.append(UInt8(ascii: "\""))
        }
        if copied { return }
        var escaped = ""
        appendJSON(text, to: &escaped)
        out.append(contentsOf: escaped.utf8)
    }

    /// Whether a JSON string literal of `text` needs escapes (control characters, quote, backslash).
    static func needsEscaping(_ text: String) -> Bool {
        !withPlainUTF8(text) { _ in }
    }

    /// Runs `body` over `text`'s UTF-8 bytes and returns true when a JSON string literal of
    /// them needs no escapes; false, without running it, when it does. Over contiguous bytes
    /// (`withUTF8` gives them for small strings too, which `withContiguousStorageIfAvailable`
    /// does not): the UTF-8 view's iterator showed in the claimer's and the recorder's profiles.
    static func withPlainUTF8(_ text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            guard !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                return false
            }
            body(bytes)
            return true
        }
    }

    /// Appends `text` as a JSON string literal.
    static func appendJSON(_ text: String, to out: inout String) {
        // Fast path: most names and ids need no escaping at all.
        if !needsEscaping(text) {
            out += "\""
            out += text
            out += "\""
            return
        }
        out += "\""
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
        out += "\""
    }
}
