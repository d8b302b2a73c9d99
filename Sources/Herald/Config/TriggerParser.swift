import Foundation

/// Turns the `tables:` list (Hasura v2 metadata `tables.yaml` entries) into trigger configs.
/// Keys Herald does not use at table level (permissions, relationships, …) are ignored;
/// inside an event trigger an unknown key is an error, because there it changes behaviour.
struct TriggerParser {
    let environment: [String: String]
    /// The Hasura source whose tables are read, when they come from a metadata directory.
    var sourceName: String? = nil

    static let triggerKeys = Set([
        "name", "definition", "retry_conf", "webhook", "webhook_from_env", "headers", "retry_backoff", "signing",
        // Hasura keys of real exports (see parseHasuraExtras).
        "source", "replace", "comment", "trigger_on_replication", "cleanup_config", "ordering",
    ]).union(protectionKeys)
    /// Hasura keys Herald knows but does not implement: refusing them beats silently sending
    /// something other than what the user configured. Not listed as expected keys.
    static let unsupportedTriggerKeys: [String: String] = [
        "request_transform":
            "request transforms are not supported by Herald: the receiver would get a different request than Hasura sent; remove the key and transform in the receiver",
        "response_transform":
            "response transforms are not supported by Herald (they only apply to actions in Hasura); remove the key",
    ]

    /// Reads every table entry and trigger and returns the triggers that loaded with the
    /// problems of the others, so all are reported at once (a missing environment variable in
    /// one trigger does not hide another's).
    func parseAll(tables: ConfigNode) throws(ConfigError) -> ([TriggerConfig], [ConfigError]) {
        var triggers: [TriggerConfig] = []
        var seen: [String: ConfigNode] = [:]
        var problems: [ConfigError] = []
        for element in try tables.resolvingInclude().elements() {
            do throws(ConfigError) {
                let entry = try element.resolvingInclude()
                if case .scalar = entry.node {
                    throw entry.error(.wrongType, "expected a table entry (a mapping with 'table:') or \"!include FILE\"")
                }
                let table = try parseTable(try entry.required("table"))
                guard let list = try entry.child("event_triggers") else { continue }
                for triggerNode in try list.elements() {
                    do throws(ConfigError) {
                        var trigger = try parseTrigger(triggerNode, table: table)
                        trigger.location = ConfigLocation(file: triggerNode.file, line: triggerNode.line)
                        if let first = seen[trigger.name] {
                            let where_ = first.line.map { " (first defined at line \($0))" } ?? ""
                            throw triggerNode.error(.duplicateTrigger, "duplicate trigger name '\(trigger.name)'\(where_)")
                        }
                        seen[trigger.name] = triggerNode
                        triggers.append(trigger)
                    } catch {
                        problems.append(error)
                    }
                }
            } catch {
                problems.append(error)
            }
        }
        return (triggers, problems)
    }

    private func parseTable(_ node: ConfigNode) throws(ConfigError) -> TableName {
        if case .scalar = node.node {
            return TableName(schema: "public", name: try nonEmpty(node))
        }
        return TableName(schema: try nonEmpty(try node.required("schema")), name: try nonEmpty(try node.required("name")))
    }

    private func parseTrigger(_ node: ConfigNode, table: TableName) throws(ConfigError) -> TriggerConfig {
        for (key, value) in try node.entries() {
            if let reason = Self.unsupportedTriggerKeys[key] {
                throw value.error(.unsupported, reason)
            }
        }
        try node.rejectUnknownKeys(Self.triggerKeys)
        let nameNode = try node.required("name")
        let name = try nameNode.string()
        try Self.validateTriggerName(name, node: nameNode)

        let (webhook, source) = try parseWebhook(node)
        var trigger = TriggerConfig(name: name, table: table, webhook: webhook)
        trigger.webhookSource = source

        let definition = try node.required("definition")
        try definition.rejectUnknownKeys(["enable_manual", "insert", "update", "delete"])
        trigger.enableManual = try definition.child("enable_manual")?.bool() ?? false
        trigger.insert = try definition.child("insert").map(parseOperation)
        trigger.update = try definition.child("update").map(parseOperation)
        // Hasura's `update: {columns: []}` listens to no column, so no update ever fires.
        if case .only(let columns)? = trigger.update?.columns, columns.isEmpty { trigger.update = nil }
        trigger.delete = try definition.child("delete").map(parseOperation)
        if trigger.insert == nil, trigger.update == nil, trigger.delete == nil, !trigger.enableManual,
            try definition.child("update") == nil
        {
            throw definition.error(.invalidValue, "trigger '\(name)' fires on nothing: define insert, update, delete or enable_manual")
        }

        if let retry = try node.child("retry_conf") {
            try retry.rejectUnknownKeys(["num_retries", "interval_sec", "timeout_sec", "non_retryable_statuses"])
            trigger.retry.numRetries = try integer(retry, "num_retries", minimum: 0) ?? trigger.retry.numRetries
            trigger.retry.intervalSeconds = try integer(retry, "interval_sec", minimum: 0) ?? trigger.retry.intervalSeconds
            trigger.retry.timeoutSeconds = try integer(retry, "timeout_sec", minimum: 1) ?? trigger.retry.timeoutSeconds
        }
        if let backoff = try node.child("retry_backoff") {
            trigger.backoff = try parseBackoff(backoff)
        }
        if let headers = try node.child("headers") {
            trigger.headers = try headers.elements().map { (element) throws(ConfigError) -> HeaderConfig in
                try parseHeader(element, owner: "trigger '\(name)'")
            }
        }
        if let signing = try node.child("signing") {
            trigger.signing = try parseSigning(signing)
        }
        trigger.protection = try parseProtection(node)
        trigger.ordering = try parseOrdering(node)
        try parseHasuraExtras(node, into: &trigger)
        return trigger
    }

    /// Herald's `retry_backoff` extension.
    func parseBackoff(_ node: ConfigNode) throws(ConfigError) -> RetryBackoff {
        try node.rejectUnknownKeys(["strategy", "max_interval_sec"])
        var backoff = RetryBackoff()
        if let strategyNode = try node.child("strategy") {
            let text = try strategyNode.string()
            guard let strategy = RetryBackoff.Strategy(rawValue: text) else {
                throw strategyNode.error(.invalidValue, "unknown strategy '\(text)' (expected fixed or exponential)")
            }
            backoff.strategy = strategy
        }
        backoff.maxIntervalSeconds = try integer(node, "max_interval_sec", minimum: 1) ?? backoff.maxIntervalSeconds
        return backoff
    }

    /// Hasura's rule for trigger names, which also keeps Herald's trigger names
    /// (`herald_<name>_<op>`) under PostgreSQL's 63-byte identifier limit.
    static func validateTriggerName(_ name: String, node: ConfigNode) throws(ConfigError) {
        guard name.wholeMatch(of: /[A-Za-z][A-Za-z0-9_\-]*/) != nil, name.count <= 42 else {
            throw node.error(
                .invalidValue,
                "invalid trigger name '\(name)': use letters, digits, '_' or '-', start with a letter, at most 42 characters")
        }
    }

    private func parseOperation(_ node: ConfigNode) throws(ConfigError) -> OperationSpec {
        try node.rejectUnknownKeys(["columns", "payload"])
        var spec = OperationSpec()
        if let columns = try node.child("columns") {
            let emptyList = (try? columns.elements().isEmpty) ?? false
            spec.columns = emptyList && node.path.hasSuffix(".update") ? .only([]) : try parseColumns(columns)
        }
        if let payload = try node.child("payload") { spec.payload = try parseColumns(payload) }
        return spec
    }

    private func parseColumns(_ node: ConfigNode) throws(ConfigError) -> ColumnSelection {
        if case .scalar = node.node {
            guard try node.string() == "*" else {
                throw node.error(.invalidValue, "expected \"*\" or a list of column names")
            }
            return .all
        }
        let names = try node.elements().map { (element) throws(ConfigError) -> String in try nonEmpty(element) }
        if names.isEmpty { throw node.error(.invalidValue, "the column list is empty") }
        return .only(names)
    }

    func parseWebhook(_ node: ConfigNode) throws(ConfigError) -> (String, ValueSource) {
        let literal = try node.child("webhook")
        let fromEnv = try node.child("webhook_from_env")
        switch (literal, fromEnv) {
        case (nil, nil):
            throw node.error(.missingKey, "missing required key 'webhook' (or 'webhook_from_env')")
        case (.some, .some):
            throw node.error(.invalidValue, "set either 'webhook' or 'webhook_from_env', not both")
        case (let literal?, nil):
            let text = try literal.string()
            let expanded = try expandTemplate(text, node: literal)
            try Self.validateURL(expanded, node: literal)
            return (expanded, expanded == text ? .literal : .template(text))
        case (nil, let env?):
            let variable = try env.string()
            let value = try lookup(variable, node: env)
            try Self.validateURL(value, node: env, from: variable)
            return (value, .environment(variable))
        }
    }

    /// Hasura lets a webhook read `{{NAME}}` from the environment, e.g. `{{BASE_URL}}/orders`.
    private func expandTemplate(_ text: String, node: ConfigNode) throws(ConfigError) -> String {
        var result = ""
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            guard let close = rest.range(of: "}}", range: open.upperBound..<rest.endIndex) else {
                throw node.error(.invalidValue, "unterminated '{{' in webhook")
            }
            result += rest[..<open.lowerBound]
            let variable = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            result += try lookup(variable, node: node)
            rest = rest[close.upperBound...]
        }
        return result + rest
    }

    static func validateURL(_ text: String, node: ConfigNode, from variable: String? = nil) throws(ConfigError) {
        let origin = variable.map { " (from $\($0))" } ?? ""
        guard let components = URLComponents(string: text),
            let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = components.host, !host.isEmpty
        else {
            // A URL from the environment may hold credentials: name the variable, not the value.
            let shown = variable == nil ? "'\(text)'" : "the value"
            throw node.error(.invalidValue, "webhook\(origin) must be an http:// or https:// URL with a host; got \(shown)")
        }
    }

    /// One `headers:` entry; `owner` names where it is for messages (`trigger 'x'`, `alerts`).
    func parseHeader(_ node: ConfigNode, owner: String) throws(ConfigError) -> HeaderConfig {
        try node.rejectUnknownKeys(["name", "value", "value_from_env"])
        let nameNode = try node.required("name")
        let name = try nameNode.string()
        if let problem = HeaderValidation.problem(name: name, value: "", owner: owner) {
            throw nameNode.error(.invalidValue, problem)
        }
        let literal = try node.child("value")
        let fromEnv = try node.child("value_from_env")
        let header: HeaderConfig
        switch (literal, fromEnv) {
        case (let literal?, nil):
            header = HeaderConfig(name: name, value: try literal.string(), source: .literal)
        case (nil, let env?):
            let variable = try env.string()
            header = HeaderConfig(name: name, value: try lookup(variable, node: env), source: .environment(variable))
        case (nil, nil):
            header = HeaderConfig(name: name, value: "", source: .literal)
        case (.some, .some):
            throw node.error(.invalidValue, "set either 'value' or 'value_from_env', not both")
        }
        if let problem = HeaderValidation.problem(name: name, value: header.value, owner: owner) {
            throw node.error(.invalidValue, problem)
        }
        return header
    }

    func parseSigning(_ node: ConfigNode) throws(ConfigError) -> SigningConfig {
        try node.rejectUnknownKeys(["secret_from_env"])
        let envNode = try node.required("secret_from_env")
        let variable = try envNode.string()
        let secret = try lookup(variable, node: envNode)
        guard let key = WebhookSignature.decodeSecret(secret) else {
            throw envNode.error(
                .invalidValue, "$\(variable) is not a Standard Webhooks secret (expected whsec_ followed by base64)")
        }
        return SigningConfig(secretEnvironmentVariable: variable, key: key)
    }

    private func lookup(_ variable: String, node: ConfigNode) throws(ConfigError) -> String {
        guard !variable.isEmpty else { throw node.error(.invalidValue, "empty environment variable name") }
        guard let value = environment[variable], !value.isEmpty else {
            throw node.error(.missingEnvironment, "environment variable \(variable) is not set")
        }
        return value
    }

    func integer(_ node: ConfigNode, _ key: String, minimum: Int) throws(ConfigError) -> Int? {
        guard let child = try node.child(key) else { return nil }
        let value = try child.int()
        guard value >= minimum else {
            throw child.error(.invalidValue, "must be at least \(minimum) (got \(value))")
        }
        return value
    }

    private func nonEmpty(_ node: ConfigNode) throws(ConfigError) -> String {
        let text = try node.string()
        guard !text.isEmpty else { throw node.error(.invalidValue, "must not be empty") }
        return text
    }
}
