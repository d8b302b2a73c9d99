import HTTPTypes
import Hummingbird

/// Responses of the console, each with the headers that keep a page of user data inert.
enum ConsoleResponse {
    /// No script at all, styles only from the console itself, no framing, forms only back to
    /// the console: even a payload that slipped past escaping could not run or exfiltrate.
    static let contentSecurityPolicy =
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    static var securityHeaders: HTTPFields {
        var headers = HTTPFields()
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        return headers
    }

    static func html(_ markup: Markup, status: HTTPResponse.Status = .ok) -> Response {
        var headers = securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        // Pages show live state and payloads: never from a cache, never stored by one.
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: markup.html)))
    }

    static func redirect(_ location: String) -> Response {
        var headers = securityHeaders
        headers[.location] = location
        headers[.cacheControl] = "no-store"
        return Response(status: .seeOther, headers: headers)
    }

    static func unauthorized() -> Response {
        var headers = securityHeaders
        headers[.wwwAuthenticate] = "Bearer"
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: .unauthorized, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "unauthorized\n")))
    }

    /// 503: every console database slot stayed busy for the whole wait.
    static func busy(_ busy: ConsoleGate.Busy) -> Response {
        var response = plain(busy.description + "\n", status: .serviceUnavailable)
        response.headers[.retryAfter] = "2"
        return response
    }

    /// 429: too many wrong logins lately, from anyone; says when the next guess is taken.
    static func tooManyLogins(retryAfterSeconds: Int) -> Response {
        var response = plain(
            "too many failed logins; try again in \(retryAfterSeconds) s\n", status: .tooManyRequests)
        response.headers[.retryAfter] = String(retryAfterSeconds)
        return response
    }

    private static func plain(_ text: String, status: HTTPResponse.Status) -> Response {
        var headers = securityHeaders
        headers[.contentType] = "text/plain; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func readOnly(_ page: PageContext) -> Response {
        html(
            ConsoleLayout.message(
                title: "Read-only console", context: page,
                "This console is read-only (console.read_only: true); use herald redeliver-event or a console without it."),
            status: .forbidden)
    }
}
