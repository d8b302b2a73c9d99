import Foundation

/// What counts as secret in what Herald shows (invocation rows, /stats, /metrics, the
/// console, logs, `check-config`, alerts, libpq errors), decided in one place.
///
/// Two layers, applied together by ``Redactor``: URL parts that are secret by position
/// (userinfo, query string, fragment) wherever a URL appears in text, and the secret values
/// the configuration holds, wherever they appear, in the forms text puts them in (as they
/// are, percent-encoded, JSON- and HTML-escaped).
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
        guard let components = URLComponents(string: text), components.host != nil, text.contains("://") else {
            return placeholder
        }
        return urls(in: text)
    }

    /// `text` with every `scheme://…` in it shown as ``url(_:)`` shows one: userinfo, query
    /// string and fragment replaced. It needs no URL to parse, so it also covers templates
    /// (`http://user:pw@{{HOST}}/x`), log lines and error messages quoting a URL. A URL ends
    /// at white space, a quote, an angle bracket or a backslash, as it does in logs, JSON and
    /// HTML; brackets and braces belong to it (`[::1]`, `{{HOST}}`).
    public static func urls(in text: String, placeholder: String = placeholder) -> String {
        guard text.contains("://") else { return text }
        let bytes = Array(text.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        let placeholderBytes = Array(placeholder.utf8)
        var index = 0
        while index < bytes.count {
            guard startsSeparator(bytes, at: index), index > 0, isSchemeByte(bytes[index - 1]) else {
                output.append(bytes[index])
                index += 1
                continue
            }
            output.append(contentsOf: "://".utf8)
            index += 3
            var end = index
            while end < bytes.count, !endsURL(bytes[end]) { end += 1 }
            let url = bytes[index..<end]
            let authorityEnd = url.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }
                ?? url.endIndex
            var rest = url.startIndex
            if let at = url[..<authorityEnd].lastIndex(of: UInt8(ascii: "@")) {
                output.append(contentsOf: placeholderBytes)
                rest = at
            }
            let question = url[rest...].firstIndex(of: UInt8(ascii: "?"))
            let hash = url[rest...].firstIndex(of: UInt8(ascii: "#"))
            output.append(contentsOf: url[rest..<(question.map { min($0, hash ?? $0) } ?? hash ?? url.endIndex)])
            if let question, question < (hash ?? url.endIndex) {
                output.append(UInt8(ascii: "?"))
                output.append(contentsOf: placeholderBytes)
            }
            if hash != nil {
                output.append(UInt8(ascii: "#"))
                output.append(contentsOf: placeholderBytes)
            }
            index = end
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// `text` with its query string and fragment replaced, the rest as written.
    public static func redactQuery(_ text: String) -> String {
        var result = text
        if let hash = result.firstIndex(of: "#") { result = String(result[..<hash]) + "#" + placeholder }
        if let question = result.firstIndex(of: "?") {
            let fragment = result.firstIndex(of: "#").map { String(result[$0...]) } ?? ""
            result = String(result[..<question]) + "?" + placeholder + fragment
        }
        return result
    }

    /// A libpq connection URL or keyword string fit to show: the user stays (it names the
    /// role at fault), the password and any password-like parameter are replaced.
    public static func databaseURL(_ url: String, mask: String = placeholder) -> String {
        var result = url
        // postgres://user:secret@host/db → postgres://user:<redacted>@host/db
        if let scheme = result.range(of: "://") {
            let authorityEnd = result[scheme.upperBound...].firstIndex { $0 == "/" || $0 == "?" } ?? result.endIndex
            if let at = result[scheme.upperBound..<authorityEnd].lastIndex(of: "@"),
                let colon = result[scheme.upperBound..<at].firstIndex(of: ":")
            {
                result.replaceSubrange(result.index(after: colon)..<at, with: mask)
            }
        }
        // ?password=… / sslpassword=… in a URL, password=… in the keyword form.
        return result.replacing(/(?i)(password|sslpassword)(\s*=\s*)('[^']*'|[^\s&#]+)/) {
            "\($0.output.1)\($0.output.2)\(mask)"
        }
    }

    /// The secret parts of a database URL as they may reappear in a libpq message: the
    /// password as written (percent-encoded or not) and decoded, and password parameters.
    static func databaseSecrets(_ url: String) -> [String] {
        var secrets = passwordForms(url)
        for match in url.matches(of: /(?i)(?:password|sslpassword)\s*=\s*('([^']*)'|[^\s&#]+)/) {
            let value = String(match.output.2 ?? match.output.1)
            secrets += [value, value.removingPercentEncoding].compactMap { $0 }
        }
        return secrets
    }

    /// The password of a `scheme://user:password@host…` URL, as written and percent-decoded.
    static func passwordForms(_ url: String) -> [String] {
        guard let scheme = url.range(of: "://") else { return [] }
        let authorityEnd = url[scheme.upperBound...].firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? url.endIndex
        guard let at = url[scheme.upperBound..<authorityEnd].lastIndex(of: "@"),
            let colon = url[scheme.upperBound..<at].firstIndex(of: ":")
        else { return [] }
        let password = String(url[url.index(after: colon)..<at])
        return [password, password.removingPercentEncoding].compactMap { $0 }
    }

    /// A libpq message about `url` (a connection failure) fit to show: libpq quotes the part
    /// of the URL it could not read (`invalid percent-encoded token: "s3cr%zzet"`), which may
    /// be the password or a piece of it. So besides the password itself, any quoted text that
    /// the shown form of the URL does not contain is replaced: what is quoted from the host,
    /// database or user stays.
    public static func connectionMessage(_ message: String, url: String) -> String {
        var result = Redactor(secrets: databaseSecrets(url))(message)
        let shown = databaseURL(url)
        result = result.replacing(/"([^"]*)"/) { match in
            let quoted = String(match.output.1)
            return quoted.isEmpty || shown.contains(quoted) ? "\"\(quoted)\"" : "\"\(placeholder)\""
        }
        return result
    }

    private static func startsSeparator(_ bytes: [UInt8], at index: Int) -> Bool {
        index + 2 < bytes.count && bytes[index] == UInt8(ascii: ":") && bytes[index + 1] == UInt8(ascii: "/")
            && bytes[index + 2] == UInt8(ascii: "/")
    }

    private static func isSchemeByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "+")
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }

    private static func endsURL(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\""),
            UInt8(ascii: "'"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\\"), UInt8(ascii: "`"):
            true
        default: false
        }
    }
}
