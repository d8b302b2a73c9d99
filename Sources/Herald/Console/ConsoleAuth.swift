import Crypto
import Foundation
import Hummingbird

/// Who may use the console and how they prove it.
///
/// With a token (`stats.bearer_token_env`) a request is let in by `Authorization: Bearer
/// <token>` (scripts) or by the session cookie the login page sets after the same token was
/// typed. The cookie holds a random session id (32 bytes from the system's CSPRNG), unique per
/// login; the database keeps only its HMAC-SHA256 keyed by the token (``ConsoleSessions``),
/// so a session can be revoked (logout, `herald console-logout --all`), a leaked table row
/// cannot be replayed, and every session still ends when the token changes.
/// POSTs from a cookie session need a CSRF token bound to that cookie; a Bearer request needs
/// none, since a browser never adds that header on its own. Without a token (a loopback
/// listener, or `allow_unauthenticated`) the console is open, still with CSRF tokens, and on
/// loopback only for requests whose Host is loopback, which keeps DNS-rebinding pages out.
struct ConsoleAuth: Sendable {
    enum Identity: Sendable, Equatable {
        case session(String)
        case bearer
        case open

        /// How audit lines name the actor: one token is shared, so the best available is the
        /// method and, for a cookie, a short fingerprint that ties a session's actions together.
        var auditName: String {
            switch self {
            case .session(let cookie):
                "session:" + SHA256.hash(data: Array(cookie.utf8)).prefix(4).map { String(format: "%02x", $0) }.joined()
            case .bearer: "bearer-token"
            case .open: "unauthenticated"
            }
        }
    }

    static let cookieName = "herald_console"
    static let sessionSeconds = 12 * 3600

    let token: Secret?
    /// The HMAC key: the token's bytes, or random bytes of this process.
    private let keyBytes: Secret
    /// Whether to insist on a loopback Host header (open console on a loopback listener).
    let requireLoopbackHost: Bool
    /// Adds `Secure` to the cookie when the console is reached over https.
    let secureCookie: Bool

    init(token: Secret?, listenerIsLoopback: Bool, secureCookie: Bool) {
        self.token = token
        // Without a token, CSRF tokens are keyed by a secret of this process alone.
        keyBytes = token ?? Secret((0..<32).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.joined())
        requireLoopbackHost = token == nil && listenerIsLoopback
        self.secureCookie = secureCookie
    }

    var needsLogin: Bool { token != nil }

    /// What a request presents: an identity proven on the spot, or a session id the caller
    /// must still find live in the database.
    enum Credential: Sendable, Equatable {
        case proven(Identity)
        case session(id: String)
    }

    /// The credential a request presents, or nil when it presents none that could be good.
    func credential(_ request: Request) -> Credential? {
        guard let token else {
            if requireLoopbackHost, !Self.isLoopbackHost(request.head.authority ?? "") {
                return nil
            }
            return .proven(.open)
        }
        if let header = request.headers[.authorization] {
            return ConstantTime.bearerMatches(header, token: token) ? .proven(.bearer) : nil
        }
        guard let cookie = request.cookies[Self.cookieName]?.value, Self.isWellFormedSessionID(cookie) else { return nil }
        return .session(id: cookie)
    }

    /// Whether a typed token is the configured one.
    func acceptsLogin(_ typed: String) -> Bool {
        guard let token else { return false }
        return ConstantTime.equal(typed, token.value)
    }

    static let sessionIDBytes = 32

    /// A new session id: 32 random bytes, base64url without padding (43 characters).
    static func newSessionID() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<sessionIDBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return base64URL(bytes)
    }

    /// What the database stores for a session id: its HMAC-SHA256 keyed by the token, hex.
    /// Keyed, so a new token orphans every stored session without touching the table.
    func sessionHash(_ id: String) -> String {
        code("session.\(id)").map { String(format: "%02x", $0) }.joined()
    }

    /// Rejects what ``newSessionID()`` cannot have made before it costs a database lookup.
    static func isWellFormedSessionID(_ text: String) -> Bool {
        text.utf8.count == 43
            && text.utf8.allSatisfy { byte in
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
                    || byte == UInt8(ascii: "_")
            }
    }

    /// The CSRF token forms of this identity carry.
    func csrfToken(for identity: Identity) -> String {
        switch identity {
        case .session(let cookie): mac("csrf.\(cookie)")
        case .bearer, .open: mac("csrf.open")
        }
    }

    /// Whether a POST from `identity` may act: Bearer requests always, others with the
    /// right CSRF token.
    func allowsPost(from identity: Identity, csrf: String?) -> Bool {
        if identity == .bearer { return true }
        guard let csrf else { return false }
        return ConstantTime.equal(csrf, csrfToken(for: identity))
    }

    func setCookie(_ value: String, maxAge: Int) -> String {
        "\(Self.cookieName)=\(value); Path=/console; Max-Age=\(maxAge); HttpOnly; SameSite=Strict"
            + (secureCookie ? "; Secure" : "")
    }

    private func mac(_ message: String) -> String { Self.base64URL(code(message)) }

    private func code(_ message: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: Array(keyBytes.value.utf8))))
    }

    private static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func isLoopbackHost(_ authority: String) -> Bool {
        var host = authority
        if host.hasPrefix("[") {
            host = String(host.dropFirst().prefix { $0 != "]" })
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        return LoopbackName.isLoopback(host: host)
    }
}
