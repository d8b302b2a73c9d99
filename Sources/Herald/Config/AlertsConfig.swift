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

    /// The webhook as it may be printed, shown as a trigger's is (``TriggerConfig/displayWebhook``).
    public var displayWebhook: String {
        switch webhookSource {
        case .literal: Redaction.url(webhook)
        case .environment(let name): "<env \(name)>"
        case .template(let text): Redaction.redactQuery(Redaction.urls(in: text))
        }
    }

    static let keys: Set<String> = ["webhook", "webhook_from_env", "signing", "digest_interval_sec", "headers"]

    /// Reads the section with the same code, rules and error messages as a trigger's
    /// `webhook` (including Hasura's `{{NAME}}` templates), `headers` and `signing`, and
    /// like a trigger reports every problem of the section at once.
    static func parse(_ node: ConfigNode, environment: [String: String]) throws(ConfigError) -> AlertsConfig {
        var problems = ProblemList()
        problems.record(contentsOf: node.unknownKeyProblems(keys))
        let parser = TriggerParser(environment: environment)
        let (webhook, source) = problems.check { () throws(ConfigError) in try parser.parseWebhook(node) } ?? ("", .literal)
        var config = AlertsConfig(webhook: webhook)
        config.webhookSource = source
        problems.check { () throws(ConfigError) in
            config.digestIntervalSeconds =
                try parser.integer(node, "digest_interval_sec", minimum: 1) ?? config.digestIntervalSeconds
        }
        if let headers = problems.check({ () throws(ConfigError) in try node.child("headers")?.elements() }) ?? nil {
            config.headers = headers.compactMap { element in
                problems.check { () throws(ConfigError) in try parser.parseHeader(element, owner: "alerts") }
            }
        }
        config.signing = problems.check { () throws(ConfigError) in try node.child("signing").map(parser.parseSigning) } ?? nil
        try problems.throwIfAny()
        return config
    }
}
