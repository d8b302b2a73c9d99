/// `stats.listen` parsed: `host:port`, `[v6]:port` or `:port` (all interfaces).
public struct StatsListenAddress: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }

    /// Loopback addresses only reach this machine; anything else needs a token.
    public var isLoopback: Bool {
        LoopbackName.isLoopback(host: host)
    }

    /// Why this address may not be used as configured, or nil. Listening beyond loopback
    /// without a token would let anyone who reaches the port read /stats and use the
    /// console, so it takes an explicit `allow_unauthenticated: true`.
    public func exposureProblem(hasToken: Bool, allowUnauthenticated: Bool) -> String? {
        guard !isLoopback, !hasToken, !allowUnauthenticated else { return nil }
        return "'\(host):\(port)' is reachable from other machines and no bearer token is set: "
            + "set stats.bearer_token_env (recommended) or stats.allow_unauthenticated: true"
    }
}
