import Foundation

/// Turns the `tables:` list (Hasura v2 metadata `tables.yaml` entries) into trigger configs.
/// Keys Herald does not use at table level (permissions, relationships, …) are ignored;
/// inside an event trigger an unknown key is an error, because there it changes behaviour.
struct TriggerParser {
    let environment: [String: String]
    /// The Hasura source whose tables are read, when they come from a metadata directory.
    var sourceName: String? = nil
    /// Whether the list is Hasura's own `tables.yaml` (a metadata directory or a bare table
    /// list), where tracked tables without event triggers are normal. In Herald's `tables:`
    /// such an entry delivers nothing, and is most likely a misspelt `event_triggers`.
    var isHasuraExport = false

    /// Table-level keys of Hasura v2 metadata. Herald reads `table` and `event_triggers` and
    /// ignores the rest; any other key is an error, because a typo here (`event_trigger:`)
    /// would silently drop every trigger of the table.
    static let tableKeys: Set<String> = [
        "table", "event_triggers", "configuration", "computed_fields", "remote_relationships", "array_relationships",
        "object_relationships", "insert_permissions", "select_permissions", "update_permissions", "delete_permissions",
        "permissions", "relationships", "is_enum", "apollo_federation_config", "logical_model",
    ]

    static let triggerKeys = Set([
        "name", "definition", "retry_conf", "webhook", "webhook_from_env", "headers", "retry_backoff", "signing",
        "request_transform",
        // Hasura keys of real exports (see parseHasuraExtras).
        "source", "replace", "comment", "trigger_on_replication", "cleanup_config", "ordering",
        // Herald's own.
        "filter", "batch", "delivery",
    ]).union(protectionKeys)
    /// Hasura keys Herald knows but does not implement: refusing them beats silently sending
    /// something other than what the user configured. Not listed as expected keys.
    static let unsupportedTriggerKeys: [String: String] = [
        "response_transform":
            "response transforms are not supported by Herald (they only apply to actions in Hasura); remove the key",
    ]

    /// Reads every table entry and trigger, going on past each problem, and returns the
    /// triggers with every problem found, so all are reported at once: a missing environment
    /// variable in one trigger hides neither another trigger's problems nor another part of
    /// the same trigger. A trigger with problems is in the list too, as far as it could be
    /// read, so that checks across triggers (duplicate names, the lease against every
    /// timeout) still see it; the list is usable only when no problem comes with it.
    func parseAll(tables: ConfigNode) throws(ConfigError) -> ([TriggerConfig], [ConfigError]) {
        var triggers: [TriggerConfig] = []
        var seen: [String: ConfigNode] = [:]
        var problems = ProblemList()
        for element in try tables.resolvingInclude().elements() {
            guard let entry = problems.check({ () throws(ConfigError) in try element.resolvingInclude() }) else { continue }
            if case .scalar = entry.node {
                problems.record(
                    entry.error(.wrongType, "expected a table entry (a mapping with 'table:') or \"!include FILE\""))
                continue
            }
            // A bad table name does not hide the problems of its triggers.
            let readTable = problems.check { () throws(ConfigError) in try parseTable(try entry.required("table")) }
            let table = readTable ?? TableName(schema: "", name: "")
            problems.record(contentsOf: entry.unknownKeyProblems(Self.tableKeys))
            let list = problems.check { () throws(ConfigError) in try entry.child("event_triggers")?.elements() } ?? nil
            if !isHasuraExport, let readTable, list?.isEmpty ?? true, !entry.hasUnknownKeys(Self.tableKeys) {
                problems.record(
                    entry.error(
                        .missingKey,
                        "the entry for table \(readTable) has no event_triggers, so nothing on it is delivered: add event_triggers or remove the entry"))
            }
            guard let list else { continue }
            for triggerNode in list {
                let (parsed, triggerProblems) = parseTrigger(triggerNode, table: table)
                problems.record(contentsOf: triggerProblems)
                guard var trigger = parsed else { continue }
                trigger.location = ConfigLocation(file: triggerNode.file, line: triggerNode.line)
                if let first = seen[trigger.name] {
                    let where_ = first.line.map { " (first defined at line \($0))" } ?? ""
                    problems.record(triggerNode.error(.duplicateTrigger, "duplicate trigger name '\(trigger.name)'\(where_)"))
                    continue
                }
                seen[trigger.name] = triggerNode
                triggers.append(trigger)
            }
        }
        return (triggers, problems.all)
    }

    private func parseTable(_ node: ConfigNode) throws(ConfigError) -> TableName {
        if case .scalar = node.node {
            return TableName(schema: "public", name: try nonEmpty(node))
        }
        // A key misplaced into the name (`event_triggers` indented one level too deep) is named.
        try node.rejectUnknownKeys(["schema", "name"])
        return TableName(schema: try nonEmpty(try node.required("schema")), name: try nonEmpty(try node.required("name")))
    }

    /// Reads one trigger, going on past each problem to the parts that do not depend on it:
    /// a missing webhook variable must hide neither a missing header variable, nor a bad
    /// signing secret, nor the timeout the lease is checked against. Returns the trigger as
    /// far as it could be read (nil when it has no name to be known by) and every problem.
    private func parseTrigger(_ node: ConfigNode, table: TableName) -> (TriggerConfig?, [ConfigError]) {
        var problems = ProblemList()
        guard checkKeys(node, allowed: Self.triggerKeys, problems: &problems) else { return (nil, problems.all) }
        let name = readName(node, problems: &problems)
        let label = name ?? ""

        // A pull trigger (`delivery: {pull: CONSUMER}`) has no webhook: its consumers fetch its events.
        let pull = problems.check { () throws(ConfigError) in try parsePullDelivery(node) } ?? nil
        var trigger = TriggerConfig(name: label, table: table, webhook: "")
        if pull == nil {
            let (webhook, source) = problems.check { () throws(ConfigError) in try parseWebhook(node) } ?? ("", .literal)
            trigger.webhook = webhook
            trigger.webhookSource = source
        } else {
            for key in ["webhook", "webhook_from_env", "batch", "request_transform", "headers", "signing"] {
                guard let other = (try? node.child(key)) ?? nil else { continue }
                problems.record(
                    other.error(.invalidValue, "'\(key)' does not apply to a pull trigger (delivery: {pull: \(pull ?? "")}): consumers fetch its events"))
            }
        }
        trigger.pullConsumer = pull

        if let definition = problems.check({ () throws(ConfigError) in try node.required("definition") }) {
            parseDefinition(definition, into: &trigger, problems: &problems)
        }
        if let retry = problems.check({ () throws(ConfigError) in try node.child("retry_conf") }) ?? nil {
            problems.record(
                contentsOf: retry.unknownKeyProblems(["num_retries", "interval_sec", "timeout_sec", "non_retryable_statuses"]))
            readRetry(retry, intervalKey: "interval_sec", timeoutKey: "timeout_sec", into: &trigger.retry, problems: &problems)
        }
        readDeliveryExtras(node, owner: "trigger '\(label)'", into: &trigger, problems: &problems)
        trigger.ordering = problems.check { () throws(ConfigError) in try parseOrdering(node) } ?? nil
        trigger.filter = problems.check { () throws(ConfigError) in try parseRowFilter(node) } ?? nil
        trigger.batch = problems.check { () throws(ConfigError) in try parseBatch(node) } ?? nil
        problems.check { () throws(ConfigError) in try parseHasuraExtras(node, into: &trigger) }
        return (name == nil ? nil : trigger, problems.inFileOrder)
    }

    /// The keys of a trigger (event or cron): Hasura keys Herald refuses, each with its
    /// reason, and every unknown key. False when the node is not a mapping at all.
    func checkKeys(_ node: ConfigNode, allowed: Set<String>, problems: inout ProblemList) -> Bool {
        guard let entries = problems.check({ () throws(ConfigError) in try node.entries() }) else { return false }
        for (key, value) in entries {
            if let reason = Self.unsupportedTriggerKeys[key] { problems.record(value.error(.unsupported, reason)) }
        }
        problems.record(
            contentsOf: node.unknownKeyProblems(allowed, reportedElsewhere: Set(Self.unsupportedTriggerKeys.keys)))
        return true
    }

    /// A trigger's `name`, or nil when there is none to read; a name that breaks the rules is
    /// a problem but is returned, so the rest of the trigger is still checked under it.
    func readName(_ node: ConfigNode, problems: inout ProblemList) -> String? {
        guard let nameNode = problems.check({ () throws(ConfigError) in try node.required("name") }),
            let name = problems.check({ () throws(ConfigError) in try nameNode.string() })
        else { return nil }
        problems.check { () throws(ConfigError) in try Self.validateTriggerName(name, node: nameNode) }
        return name
    }

    /// `retry_conf`'s numbers, each on its own (the timeout matters to the lease even when
    /// the retry count is wrong). Cron triggers name two of them differently.
    func readRetry(
        _ retry: ConfigNode, intervalKey: String, timeoutKey: String, into config: inout RetryConfig,
        problems: inout ProblemList
    ) {
        problems.check { () throws(ConfigError) in
            config.numRetries = try integer(retry, "num_retries", minimum: 0) ?? config.numRetries
        }
        problems.check { () throws(ConfigError) in
            config.intervalSeconds = try integer(retry, intervalKey, minimum: 0) ?? config.intervalSeconds
        }
        problems.check { () throws(ConfigError) in
            config.timeoutSeconds = try integer(retry, timeoutKey, minimum: 1) ?? config.timeoutSeconds
        }
    }

    /// What event and cron triggers share beyond the webhook and the retries: `retry_backoff`,
    /// `headers` (each on its own), `signing`, `request_transform` and the protection keys.
    func readDeliveryExtras(
        _ node: ConfigNode, owner: String, into trigger: inout TriggerConfig, problems: inout ProblemList
    ) {
        if let backoff = problems.check({ () throws(ConfigError) in try node.child("retry_backoff").map(parseBackoff) })
            ?? nil
        {
            trigger.backoff = backoff
        }
        if let headers = problems.check({ () throws(ConfigError) in try node.child("headers")?.elements() }) ?? nil {
            trigger.headers = headers.compactMap { element in
                problems.check { () throws(ConfigError) in try parseHeader(element, owner: owner) }
            }
        }
        trigger.signing = problems.check { () throws(ConfigError) in try node.child("signing").map(parseSigning) } ?? nil
        trigger.requestTransform =
            problems.check { () throws(ConfigError) in try node.child("request_transform").map(parseRequestTransform) }
            ?? nil
        trigger.protection =
            problems.check { () throws(ConfigError) in try parseProtection(node) } ?? TriggerProtection()
    }

    /// `definition`: each operation on its own, so one bad operation hides no other.
    private func parseDefinition(_ definition: ConfigNode, into trigger: inout TriggerConfig, problems: inout ProblemList) {
        problems.record(contentsOf: definition.unknownKeyProblems(["enable_manual", "insert", "update", "delete"]))
        var complete = true
        func read(_ body: () throws(ConfigError) -> Void) {
            if problems.check(body) == nil { complete = false }
        }
        read { () throws(ConfigError) in trigger.enableManual = try definition.child("enable_manual")?.bool() ?? false }
        read { () throws(ConfigError) in trigger.insert = try definition.child("insert").map(parseOperation) }
        read { () throws(ConfigError) in
            trigger.update = try definition.child("update").map(parseOperation)
            // Hasura's `update: {columns: []}` listens to no column, so no update ever fires.
            if case .only(let columns)? = trigger.update?.columns, columns.isEmpty { trigger.update = nil }
        }
        read { () throws(ConfigError) in trigger.delete = try definition.child("delete").map(parseOperation) }
        // With an operation unread, "fires on nothing" could be wrong: say it only when it is sure.
        guard complete else { return }
        problems.check { () throws(ConfigError) in
            if trigger.insert == nil, trigger.update == nil, trigger.delete == nil, !trigger.enableManual,
                try definition.child("update") == nil
            {
                throw definition.error(
                    .invalidValue, "trigger '\(trigger.name)' fires on nothing: define insert, update, delete or enable_manual")
            }
        }
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
            let expanded = try expandTemplate(text, node: literal, what: "the webhook")
            try Self.validateURL(expanded, node: literal)
            return (expanded, expanded == text ? .literal : .template(text))
        case (nil, let env?):
            let variable = try env.string()
            let value = try lookup(variable, node: env)
            try Self.validateURL(value, node: env, from: variable)
            return (value, .environment(variable))
        }
    }

    /// Hasura's `{{NAME}}` substitution from the environment: in a webhook
    /// (`{{BASE_URL}}/orders`), and since Hasura 2.29 in a header value. `what` names the
    /// value in messages (`the webhook`, `header 'X-Network' of trigger 'x'`); every variable
    /// the template lacks is named at once.
    func expandTemplate(_ text: String, node: ConfigNode, what: String) throws(ConfigError) -> String {
        var result = ""
        var missing: [String] = []
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            guard let close = rest.range(of: "}}", range: open.upperBound..<rest.endIndex) else {
                throw node.error(.invalidValue, "unterminated '{{' in \(what)")
            }
            result += rest[..<open.lowerBound]
            let variable = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            guard !variable.isEmpty else { throw node.error(.invalidValue, "'{{}}' in \(what) names no environment variable") }
            if let value = environment[variable], !value.isEmpty {
                result += value
            } else {
                missing.append(variable)
            }
            rest = rest[close.upperBound...]
        }
        guard missing.isEmpty else {
            let names = missing.map { "{{\($0)}}" }.joined(separator: ", ")
            throw node.error(
                .missingEnvironment,
                missing.count == 1
                    ? "environment variable \(missing[0]) is not set (\(what) reads it as \(names))"
                    : "environment variables \(missing.joined(separator: ", ")) are not set (\(what) reads them as \(names))")
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
    /// A `{{NAME}}` in a literal value is filled from the environment as Hasura ≥ 2.29 does:
    /// sending the braces on would be a silently wrong header. Such a value is a secret
    /// (``ValueSource/template(_:)``), like one from `value_from_env`.
    func parseHeader(_ node: ConfigNode, owner: String) throws(ConfigError) -> HeaderConfig {
        try node.rejectUnknownKeys(["name", "value", "value_from_env"])
        let nameNode = try node.required("name")
        let name = try nameNode.string()
        var problems = ProblemList()
        let nameProblem = HeaderValidation.problem(name: name, value: "", owner: owner)
        if let nameProblem { problems.record(nameNode.error(.invalidValue, nameProblem)) }
        let literal = try node.child("value")
        let fromEnv = try node.child("value_from_env")
        // On a problem with the value the empty stand-in is never returned: throwIfAny throws first.
        let header: HeaderConfig
        switch (literal, fromEnv) {
        case (let literal?, nil):
            let text = try literal.string()
            if text.contains("{{") {
                header =
                    problems.check { () throws(ConfigError) in
                        let value = try expandTemplate(text, node: literal, what: "header '\(name)' of \(owner)")
                        return HeaderConfig(name: name, value: value, source: .template(text))
                    } ?? HeaderConfig(name: name, value: "", source: .template(text))
            } else {
                header = HeaderConfig(name: name, value: text, source: .literal)
            }
        case (nil, let env?):
            let variable = try env.string()
            header =
                problems.check { () throws(ConfigError) in
                    let value = try lookup(variable, node: env, for: "header '\(name)' of \(owner)")
                    return HeaderConfig(name: name, value: value, source: .environment(variable))
                } ?? HeaderConfig(name: name, value: "", source: .environment(variable))
        case (nil, nil):
            header = HeaderConfig(name: name, value: "", source: .literal)
        case (.some, .some):
            throw node.error(.invalidValue, "set either 'value' or 'value_from_env', not both")
        }
        if nameProblem == nil, let problem = HeaderValidation.problem(name: name, value: header.value, owner: owner) {
            problems.record(node.error(.invalidValue, problem))
        }
        try problems.throwIfAny()
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

    /// The value of `variable`; `user` names what reads it, for the message when it is unset.
    private func lookup(_ variable: String, node: ConfigNode, for user: String? = nil) throws(ConfigError) -> String {
        guard !variable.isEmpty else { throw node.error(.invalidValue, "empty environment variable name") }
        guard let value = environment[variable], !value.isEmpty else {
            throw node.error(.missingEnvironment, "environment variable \(variable) is not set" + (user.map { " (\($0))" } ?? ""))
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
