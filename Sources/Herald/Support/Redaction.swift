import Foundation

/// What counts as secret in what Herald shows (invocation rows, /stats, the console, logs),
/// decided in one place.
public enum Redaction {
    public static let placeholder = "<redacted>"

    /// Headers whose value is a credential whatever its source: a literal `Authorization`
    /// in the config is as secret as one read from the environment.
    public static func isSensitiveHeader(_ name: String) -> Bool {
        let lower = name.lowercased()
        return ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"].contains(lower)
            || lower.contains("token") || lower.contains("secret") || lower.contains("password")
    }

    /// A URL fit to show: user, password, query string and fragment replaced, scheme, host,
    /// port and path kept (they are what an operator needs to tell receivers apart). Text that
    /// does not parse as a URL is replaced whole, since it cannot be known to be harmless.
    public static func url(_ text: String) -> String {
        guard !text.isEmpty else { return text }
        guard let components = URLComponents(string: text), components.host != nil,
            let schemeEnd = text.range(of: "://")
        else { return placeholder }
        var result = text
        let rest = result[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        if let at = rest[..<authorityEnd].lastIndex(of: "@") {
            result.replaceSubrange(schemeEnd.upperBound..<at, with: placeholder)
        }
        return redactQuery(result)
    }

    /// `text` with its query string and fragment replaced, the rest as written (for a
    /// `{{NAME}}` template, whose secret parts stay unexpanded anyway).
    public static func redactQuery(_ text: String) -> String {
        var result = text
        if let hash = result.firstIndex(of: "#") { result = String(result[..<hash]) + "#" + placeholder }
        if let question = result.firstIndex(of: "?") {
            let fragment = result.firstIndex(of: "#").map { String(result[$0...]) } ?? ""
            result = String(result[..<question]) + "?" + placeholder + fragment
        }
        return result
    }
}
