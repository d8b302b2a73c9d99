/// The top-level `alerts:` section: where Herald POSTs operator alerts (failed events,
/// disabled triggers, circuit breaker changes) as signed Standard Webhooks.
///
/// ```yaml
/// alerts:
///   webhook: https://ops.example.com/herald       # or webhook_from_env: NAME
///   signing: {secret_from_env: HERALD_ALERTS_SECRET}
///   digest_interval_sec: 60
///   headers:
///     - {name: Authorization, value_from_env: OPS_TOKEN}
/// ```
public struct AlertsConfig: Sendable, Equatable {
    /// The resolved URL.
    public var webhook: String
    public var webhookSource: ValueSource = .literal
    public var headers: [HeaderConfig] = []
    public var signing: SigningConfig?
    /// Per alert type, the first few alerts of an interval go out one by one, the rest as one digest.
    public var digestIntervalSeconds = 60

    public init(webhook: String) {
        self.webhook = webhook
    }

    /// The webhook as it may be printed: a URL from the environment can carry credentials.
    public var displayWebhook: String {
        switch webhookSource {
        case .literal: webhook
        case .environment(let name): "<env \(name)>"
        case .template(let text): text
        }
    }

    static let keys: Set<String> = ["webhook", "webhook_from_env", "signing", "digest_interval_sec", "headers"]

    /// Reads the section with the same code, rules and error messages as a trigger's
    /// `webhook` (including Hasura's `{{NAME}}` templates), `headers` and `signing`.
    static func parse(_ node: ConfigNode, environment: [String: String]) throws(ConfigError) -> AlertsConfig {
        try node.rejectUnknownKeys(keys)
        let parser = TriggerParser(environment: environment)
        let (webhook, source) = try parser.parseWebhook(node)
        var config = AlertsConfig(webhook: webhook)
        config.webhookSource = source
        config.digestIntervalSeconds =
            try parser.integer(node, "digest_interval_sec", minimum: 1) ?? config.digestIntervalSeconds
        if let headers = try node.child("headers") {
            config.headers = try headers.elements().map { (node) throws(ConfigError) in try parser.parseHeader(node, owner: "alerts") }
        }
        if let signing = try node.child("signing") {
            config.signing = try parser.parseSigning(signing)
        }
        return config
    }
}
