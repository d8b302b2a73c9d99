import Foundation

/// Hasura's `request_transform` (versions 1 and 2), compiled once at load: every template is
/// parsed when the configuration is read, so a delivery only evaluates.
///
/// Templates see `$body` (the payload Herald would send without the transform), `$base_url`
/// (the trigger's webhook) and `$session_variables` (the event's, or null).
public struct RequestTransform: Sendable, Equatable {
    /// The methods a transform may send with.
    public enum Method: String, Sendable, CaseIterable {
        case GET, POST, PUT, PATCH, DELETE
    }

    /// `query_params`: templates per parameter (a null value leaves the parameter out), or
    /// (version 2) one template for the whole query string.
    public enum QueryParams: Sendable {
        case pairs([(key: KritiTemplate, value: KritiTemplate?)])
        case template(KritiTemplate)
    }

    /// What happens to the body.
    public enum Body: Sendable {
        /// The payload as Herald sends it, `application/json`.
        case unchanged
        /// `action: transform`: the template's value as JSON, `application/json`.
        case transform(KritiTemplate)
        /// `action: remove`: no body and no `Content-Type`.
        case remove
        /// `action: x_www_form_urlencoded`: each field's template, form-encoded.
        case form([(name: String, value: KritiTemplate)])
        /// Version 1 with `content_type: application/x-www-form-urlencoded`: the template
        /// makes an object whose fields are form-encoded.
        case formFromObject(KritiTemplate)
    }

    public var version = 1
    public var method: Method?
    public var url: KritiTemplate?
    public var queryParams: QueryParams?
    /// `request_headers.add_headers`, in file order; a value is an unescaped template.
    public var addHeaders: [(name: String, value: KritiTemplate)] = []
    /// `request_headers.remove_headers`, lowercased.
    public var removeHeaders: Set<String> = []
    public var body: Body = .unchanged
    /// The transform as configured (JSON), for equality and for `check-config`.
    public var definition: String

    public init(definition: String) {
        self.definition = definition
    }

    public static func == (lhs: RequestTransform, rhs: RequestTransform) -> Bool {
        lhs.definition == rhs.definition
    }

    /// Header names (lowercased) whose values Herald must not set itself: removed, or given
    /// by `add_headers` (which replaces a header of the same name).
    public var overriddenHeaders: Set<String> {
        removeHeaders.union(addHeaders.map { $0.name.lowercased() })
    }

    /// What the transform changes, for `check-config`: `version 2, PUT, url, query_params,
    /// headers +1 -2, body form`. Templates are not shown: they may hold literal credentials.
    public var summary: String {
        var parts = ["version \(version)"]
        if let method { parts.append(method.rawValue) }
        if url != nil { parts.append("url") }
        if queryParams != nil { parts.append("query_params") }
        if !addHeaders.isEmpty || !removeHeaders.isEmpty { parts.append("headers +\(addHeaders.count) -\(removeHeaders.count)") }
        switch body {
        case .unchanged: break
        case .transform: parts.append("body template")
        case .remove: parts.append("body removed")
        case .form, .formFromObject: parts.append("body form")
        }
        return parts.joined(separator: ", ")
    }

    /// The request after the transform.
    public struct Applied: Sendable, Equatable {
        public var method: Method
        public var url: String
        /// Nil when the body is removed.
        public var body: [UInt8]?
        /// Nil when no `Content-Type` is sent.
        public var contentType: String?
        /// `add_headers`, evaluated, in file order.
        public var addedHeaders: [(name: String, value: String)]

        public static func == (lhs: Applied, rhs: Applied) -> Bool {
            lhs.method == rhs.method && lhs.url == rhs.url && lhs.body == rhs.body && lhs.contentType == rhs.contentType
                && lhs.addedHeaders.elementsEqual(rhs.addedHeaders) { $0.name == $1.name && $0.value == $1.value }
        }
    }

    /// Why a transform could not be applied to one event: the part that failed (`url`,
    /// `body`, `header 'X-Id'`, …) and Kriti's error, or a value of the wrong type.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var part: String
        public var message: String

        public var description: String { "\(part): \(message)" }
    }

    /// Evaluates the transform for one delivery. `payload` is Herald's payload JSON, bound to
    /// `$body` (and sent as is when the body is unchanged).
    public func apply(payload: [UInt8], baseURL: String, sessionVariables: KritiValue) throws(Failure) -> Applied {
        let bodyValue: KritiValue
        do {
            bodyValue = try KritiValue(json: payload)
        } catch {
            throw Failure(part: "$body", message: "not JSON: \(error)")
        }
        return try apply(body: bodyValue, payload: payload, baseURL: baseURL, sessionVariables: sessionVariables)
    }

    /// As ``apply(payload:baseURL:sessionVariables:)`` with `$body` already parsed.
    public func apply(body bodyValue: KritiValue, payload: [UInt8], baseURL: String, sessionVariables: KritiValue)
        throws(Failure) -> Applied
    {
        let variables: [String: KritiValue] = [
            "$body": bodyValue, "$base_url": .string(baseURL), "$session_variables": sessionVariables,
        ]
        func evaluate(_ template: KritiTemplate, _ part: String) throws(Failure) -> KritiValue {
            do {
                return try template.evaluate(variables)
            } catch {
                throw Failure(part: part, message: error.description)
            }
        }
        var target = baseURL
        if let url {
            target = try Self.text(evaluate(url, "url"), part: "url")
        }
        if let queryParams {
            let query: String
            switch queryParams {
            case .template(let template):
                let text = try Self.text(evaluate(template, "query_params"), part: "query_params")
                query = text.hasPrefix("?") ? String(text.dropFirst()) : text
            case .pairs(let pairs):
                var encoded: [(String, String?)] = []
                for pair in pairs {
                    guard let value = pair.value else { continue }
                    let key = try Self.text(evaluate(pair.key, "a query_params key"), part: "a query_params key")
                    let part = "query parameter '\(key)'"
                    encoded.append((key, try Self.scalarText(evaluate(value, part), part: part)))
                }
                query = Self.formEncoded(encoded)
            }
            target = Self.replacingQuery(of: target, with: query)
        }
        var applied = Applied(
            method: method ?? .POST, url: target, body: payload, contentType: "application/json", addedHeaders: [])
        switch body {
        case .unchanged:
            break
        case .transform(let template):
            applied.body = try evaluate(template, "body").jsonBytes
        case .remove:
            applied.body = nil
            applied.contentType = nil
        case .form(let fields):
            var pairs: [(String, String?)] = []
            for field in fields {
                let part = "form field '\(field.name)'"
                pairs.append((field.name, try Self.scalarText(evaluate(field.value, part), part: part)))
            }
            applied.body = Array(Self.formEncoded(pairs).utf8)
            applied.contentType = "application/x-www-form-urlencoded"
        case .formFromObject(let template):
            guard case .object(let object) = try evaluate(template, "body") else {
                throw Failure(part: "body", message: "a form-urlencoded body template must make an object")
            }
            var pairs: [(String, String?)] = []
            for (key, value) in object { pairs.append((key, try Self.scalarText(value, part: "form field '\(key)'"))) }
            applied.body = Array(Self.formEncoded(pairs).utf8)
            applied.contentType = "application/x-www-form-urlencoded"
        }
        for header in addHeaders {
            let part = "header '\(header.name)'"
            applied.addedHeaders.append((header.name, try Self.scalarText(evaluate(header.value, part), part: part) ?? ""))
        }
        return applied
    }

    /// `url` with its query string replaced; Hasura's `query_params` replaces the URL's.
    private static func replacingQuery(of url: String, with query: String) -> String {
        var base = Substring(url)
        var fragment = ""
        if let hash = base.firstIndex(of: "#") {
            fragment = String(base[hash...])
            base = base[..<hash]
        }
        if let mark = base.firstIndex(of: "?") { base = base[..<mark] }
        return query.isEmpty ? String(base) + fragment : "\(base)?\(query)\(fragment)"
    }

    /// `key=value` pairs joined by `&`, both percent-encoded; a null value leaves its pair
    /// out, as Hasura does.
    static func formEncoded(_ pairs: [(String, String?)]) -> String {
        pairs.compactMap { key, value in value.map { "\(escape(key))=\(escape($0))" } }.joined(separator: "&")
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters (Hasura's
    /// `escapeURIString isUnescapedInURIComponent`).
    static func escape(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// A template's value that must be a string (the URL, a whole query string).
    private static func text(_ value: KritiValue, part: String) throws(Failure) -> String {
        guard case .string(let text) = value else {
            throw Failure(part: part, message: "must make a string, made \(value.typeName)")
        }
        return text
    }

    /// A scalar as text (Hasura's `encodeScalar`): strings as they are, numbers and booleans
    /// as JSON writes them; nil for null (the pair is left out). Objects and arrays fail.
    private static func scalarText(_ value: KritiValue, part: String) throws(Failure) -> String? {
        switch value {
        case .string(let text): return text
        case .null: return nil
        case .number, .bool: return value.jsonText
        case .object, .array:
            throw Failure(part: part, message: "must make a string, number, boolean or null, made \(value.typeName)")
        }
    }
}
