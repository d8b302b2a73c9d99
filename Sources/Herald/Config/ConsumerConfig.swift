/// A pull consumer group (top-level `consumers:`): clients that cannot take inbound HTTP
/// receive a trigger's events from the worker's listener instead of Herald posting them.
///
/// ```yaml
/// consumers:
///   - name: billing
///     token_from_env: BILLING_CONSUMER_TOKEN   # clients send Authorization: Bearer <token>
///     visibility_timeout_sec: 30               # how long a received event is leased
/// tables:
///   - table: orders
///     event_triggers:
///       - name: order_events
///         definition: {insert: {columns: "*"}}
///         delivery: {pull: billing}            # instead of webhook
/// ```
public struct ConsumerConfig: Sendable, Equatable {
    public var name: String
    public var tokenEnvironmentVariable: String
    public var token: Secret
    public var visibilityTimeoutSeconds: Int

    public static let defaultVisibilityTimeoutSeconds = 30
    static let keys: Set<String> = ["name", "token_from_env", "visibility_timeout_sec"]

    public init(name: String, tokenEnvironmentVariable: String, token: Secret, visibilityTimeoutSeconds: Int = defaultVisibilityTimeoutSeconds) {
        self.name = name
        self.tokenEnvironmentVariable = tokenEnvironmentVariable
        self.token = token
        self.visibilityTimeoutSeconds = visibilityTimeoutSeconds
    }

    /// Reads the `consumers:` list; every problem of every entry at once.
    static func parseAll(_ node: ConfigNode, environment: [String: String]) throws(ConfigError) -> [ConsumerConfig] {
        var problems = ProblemList()
        var consumers: [ConsumerConfig] = []
        for element in try node.elements() {
            problems.record(contentsOf: element.unknownKeyProblems(keys))
            guard let nameNode = problems.check({ () throws(ConfigError) in try element.required("name") }),
                let name = problems.check({ () throws(ConfigError) in try nameNode.string() })
            else { continue }
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || (48...57).contains($0) || (97...122).contains($0) || (65...90).contains($0) })
            else {
                problems.record(nameNode.error(.invalidValue, "consumer name '\(name)' must be letters, digits, '-' or '_' (it is part of a URL)"))
                continue
            }
            if consumers.contains(where: { $0.name == name }) {
                problems.record(nameNode.error(.invalidValue, "duplicate consumer name '\(name)'"))
                continue
            }
            let variable = problems.check { () throws(ConfigError) in try element.required("token_from_env").string() } ?? ""
            var token = ""
            if !variable.isEmpty {
                token = environment[variable] ?? ""
                if token.isEmpty {
                    problems.record(
                        (try? element.required("token_from_env"))?.error(
                            .missingEnvironment, "environment variable \(variable) is not set (consumer '\(name)')")
                            ?? element.error(.missingEnvironment, "environment variable \(variable) is not set"))
                }
            }
            var consumer = ConsumerConfig(name: name, tokenEnvironmentVariable: variable, token: Secret(token))
            if let timeout = problems.check({ () throws(ConfigError) in
                try TriggerParser(environment: environment).integer(element, "visibility_timeout_sec", minimum: 1)
            }) ?? nil {
                consumer.visibilityTimeoutSeconds = timeout
            }
            consumers.append(consumer)
        }
        try problems.throwIfAny()
        return consumers
    }
}

extension TriggerParser {
    /// `delivery: {pull: CONSUMER}`: the consumer group that receives the trigger's events;
    /// nil for a webhook trigger.
    func parsePullDelivery(_ node: ConfigNode) throws(ConfigError) -> String? {
        guard let delivery = try node.child("delivery") else { return nil }
        try delivery.rejectUnknownKeys(["pull"])
        let consumer = try delivery.required("pull").string()
        guard !consumer.isEmpty else { throw delivery.error(.invalidValue, "delivery.pull names no consumer") }
        return consumer
    }
}
