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

    /// Reads the section with the same rules, and error messages, as a trigger's `webhook`,
    /// `headers` and `signing`.
    static func parse(_ node: ConfigNode, environment: [String: String]) throws(ConfigError) -> AlertsConfig {
        try node.rejectUnknownKeys(keys)
        let parser = TriggerParser(environment: environment)
        let (webhook, source) = try parser.alertWebhook(node)
        var config = AlertsConfig(webhook: webhook)
        config.webhookSource = source
        config.digestIntervalSeconds =
            try parser.integer(node, "digest_interval_sec", minimum: 1) ?? config.digestIntervalSeconds
        if let headers = try node.child("headers") {
            config.headers = try headers.elements().map(parser.alertHeader)
        }
        if let signing = try node.child("signing") {
            config.signing = try parser.alertSigning(signing)
        }
        return config
    }
}

// These mirror TriggerParser's private parseWebhook, parseHeader and parseSigning (which
// also expand `{{NAME}}` templates, a Hasura convention alerts do not need); when those
// become internal, `parse` can call them and these go.
extension TriggerParser {
    fileprivate func alertWebhook(_ node: ConfigNode) throws(ConfigError) -> (String, ValueSource) {
        switch (try node.child("webhook"), try node.child("webhook_from_env")) {
        case (nil, nil):
            throw node.error(.missingKey, "missing required key 'webhook' (or 'webhook_from_env')")
        case (.some, .some):
            throw node.error(.invalidValue, "set either 'webhook' or 'webhook_from_env', not both")
        case (let literal?, nil):
            let text = try literal.string()
            try Self.validateURL(text, node: literal)
            return (text, .literal)
        case (nil, let env?):
            let variable = try env.string()
            let value = try environmentValue(variable, node: env)
            try Self.validateURL(value, node: env, from: variable)
            return (value, .environment(variable))
        }
    }

    fileprivate func alertHeader(_ node: ConfigNode) throws(ConfigError) -> HeaderConfig {
        try node.rejectUnknownKeys(["name", "value", "value_from_env"])
        let nameNode = try node.required("name")
        let name = try nameNode.string()
        guard name.wholeMatch(of: /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/) != nil else {
            throw nameNode.error(.invalidValue, "'\(name)' is not a valid HTTP header name")
        }
        let header: HeaderConfig
        switch (try node.child("value"), try node.child("value_from_env")) {
        case (let literal?, nil):
            header = HeaderConfig(name: name, value: try literal.string(), source: .literal)
        case (nil, let env?):
            let variable = try env.string()
            header = HeaderConfig(
                name: name, value: try environmentValue(variable, node: env), source: .environment(variable))
        case (nil, nil):
            header = HeaderConfig(name: name, value: "", source: .literal)
        case (.some, .some):
            throw node.error(.invalidValue, "set either 'value' or 'value_from_env', not both")
        }
        guard !header.value.contains(where: { $0 == "\r" || $0 == "\n" }) else {
            throw node.error(.invalidValue, "header '\(name)' value contains a line break")
        }
        return header
    }

    fileprivate func alertSigning(_ node: ConfigNode) throws(ConfigError) -> SigningConfig {
        try node.rejectUnknownKeys(["secret_from_env"])
        let envNode = try node.required("secret_from_env")
        let variable = try envNode.string()
        guard let key = WebhookSignature.decodeSecret(try environmentValue(variable, node: envNode)) else {
            throw envNode.error(
                .invalidValue, "$\(variable) is not a Standard Webhooks secret (expected whsec_ followed by base64)")
        }
        return SigningConfig(secretEnvironmentVariable: variable, key: key)
    }

    private func environmentValue(_ variable: String, node: ConfigNode) throws(ConfigError) -> String {
        guard !variable.isEmpty else { throw node.error(.invalidValue, "empty environment variable name") }
        guard let value = environment[variable], !value.isEmpty else {
            throw node.error(.missingEnvironment, "environment variable \(variable) is not set")
        }
        return value
    }
}
