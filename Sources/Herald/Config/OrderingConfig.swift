/// Herald's `ordering:` extension on an event trigger: per key, at most one event in flight
/// and delivery in capture order.
public struct OrderingConfig: Sendable, Equatable {
    /// Which columns make an event's key.
    public enum Key: Sendable, Equatable {
        /// The table's primary key, looked up when the triggers are installed.
        case primaryKey
        case columns([String])
    }

    /// What a head that fails for good does to its key.
    public enum OnFailure: String, Sendable, Equatable, CaseIterable {
        /// The key waits until an operator redelivers or skips the head.
        case block
        /// The head is marked failed and the key moves on.
        case skip
    }

    public var key: Key
    public var onFailure: OnFailure

    public init(key: Key = .primaryKey, onFailure: OnFailure = .block) {
        self.key = key
        self.onFailure = onFailure
    }
}

extension TriggerParser {
    /// `ordering: {key: primary_key | [columns], on_failure: block | skip}`.
    func parseOrdering(_ node: ConfigNode) throws(ConfigError) -> OrderingConfig? {
        guard let ordering = try node.child("ordering") else { return nil }
        try ordering.rejectUnknownKeys(["key", "on_failure"])
        var config = OrderingConfig()
        if let keyNode = try ordering.child("key") {
            if case .scalar = keyNode.node {
                let text = try keyNode.string()
                guard text == "primary_key" else {
                    throw keyNode.error(.invalidValue, "unknown key '\(text)' (expected primary_key or a list of columns)")
                }
            } else {
                var columns: [String] = []
                for element in try keyNode.elements() {
                    let column = try element.string()
                    guard !column.isEmpty else { throw element.error(.invalidValue, "a key column name is empty") }
                    guard !columns.contains(column) else {
                        throw element.error(.invalidValue, "column '\(column)' appears twice in the key")
                    }
                    columns.append(column)
                }
                guard !columns.isEmpty else { throw keyNode.error(.invalidValue, "the key's column list is empty") }
                config.key = .columns(columns)
            }
        }
        if let failureNode = try ordering.child("on_failure") {
            let text = try failureNode.string()
            guard let onFailure = OrderingConfig.OnFailure(rawValue: text) else {
                throw failureNode.error(.invalidValue, "unknown on_failure '\(text)' (expected block or skip)")
            }
            config.onFailure = onFailure
        }
        return config
    }
}
