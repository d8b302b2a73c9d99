import Foundation

/// Reads Herald's YAML configuration: operational settings plus Hasura v2 `tables.yaml`
/// entries, with `HERALD_<SECTION>_<KEY>` environment overrides applied last.
public enum ConfigLoader {
    /// The file to use when `--config` is not given: `$HERALD_CONFIG`, else
    /// `./config/herald.yaml`.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        environment["HERALD_CONFIG"].flatMap { $0.isEmpty ? nil : $0 } ?? "config/herald.yaml"
    }

    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigError) -> HeraldConfig {
        if !FileManager.default.fileExists(atPath: path) {
            throw ConfigError(
                code: .fileUnreadable, file: path,
                message: "no configuration file here: copy config/herald.example.yaml to \(path), or pass --config PATH (or set HERALD_CONFIG)")
        }
        return try parse(document: ConfigFile.load(path: path), environment: environment)
    }

    public static func parse(yaml: String, file: String, environment: [String: String]) throws(ConfigError)
        -> HeraldConfig
    {
        try parse(document: ConfigFile.parse(yaml: yaml, file: file), environment: environment)
    }

    static let topLevelKeys: Set<String> = [
        "database", "worker", "stats", "console", "retention", "tables", "alerts", "hasura_metadata", "hasura_source",
        "payload_compat", "sources", "partitioning", "cron_triggers", "include_outside_directory", "consumers",
    ]

    static func parse(document: ConfigNode, environment: [String: String]) throws(ConfigError) -> HeraldConfig {
        var document = document
        if case .mapping = document.node, try document.child("include_outside_directory")?.bool() == true {
            document.includeRoot = nil
        }
        let file = document.file
        var config = HeraldConfig(file: file)
        var tables: ConfigNode?
        var sourcesNode: ConfigNode?
        var metadata: HasuraMetadata?
        var createdAtFormat = CreatedAtFormat.utc
        let bareTableList: Bool
        if case .sequence = document.node {
            // A Hasura tables.yaml used as it is: settings come from defaults and HERALD_* variables.
            bareTableList = true
            tables = document
        } else {
            bareTableList = false
            try document.rejectUnknownKeys(topLevelKeys)
            if let section = try document.child("database") {
                try readStrings(section, DatabaseSettings.stringSettings, into: &config.database)
                if !config.database.url.isEmpty { config.database.urlOrigin = "database.url in \(file)" }
            }
            if let section = try document.child("worker") {
                try readIntegers(section, WorkerSettings.integerSettings, into: &config.worker)
            }
            if let section = try document.child("stats") {
                try readStrings(
                    section, StatsSettings.stringSettings, into: &config.stats,
                    alsoAllowed: ["allow_unauthenticated", "idle_timeout_seconds"])
                config.stats.allowUnauthenticated = try section.child("allow_unauthenticated")?.bool() ?? false
                config.stats.idleTimeoutSeconds = try positive(section.child("idle_timeout_seconds")) ?? config.stats.idleTimeoutSeconds
            }
            if let section = try document.child("console") {
                try section.rejectUnknownKeys(Set(ConsoleSettings.keys))
                config.console.enabled = try section.child("enabled")?.bool() ?? true
                config.console.readOnly = try section.child("read_only")?.bool() ?? false
                config.console.publicURL = try section.child("public_url")?.string() ?? ""
                config.console.connections = try positive(section.child("connections")) ?? config.console.connections
            }
            sourcesNode = try document.child("sources")
            if let sourcesNode {
                for key in ["database", "tables", "hasura_metadata", "hasura_source"] {
                    guard let node = try document.child(key) else { continue }
                    throw ConfigError(
                        code: .invalidValue, file: file, line: node.line, key: key,
                        message: "set either sources (one entry per database) or \(key) (the single-database form), not both; move it into a source at line \(sourcesNode.line.map(String.init) ?? "?")")
                }
            }
            tables = try document.child("tables")
            metadata = try readMetadata(document, hasTables: tables != nil)
            if let metadata { tables = metadata.tables }
            createdAtFormat = try readPayloadCompat(document.child("payload_compat"))
            if let section = try document.child("partitioning") {
                config.partitioning = try PartitioningSettings.parse(section)
            }
        }
        try readRetention(
            bareTableList ? nil : document.child("retention"), environment: environment, file: file,
            into: &config.retention)
        try applyOverrides(environment, file: file, to: &config)
        // From here on the checks are independent: collect every problem, report them together.
        var problems: [ConfigError] = []
        func check(_ body: () throws(ConfigError) -> Void) {
            do { try body() } catch { problems.append(error) }
        }
        check { () throws(ConfigError) in
            guard !config.stats.bearerTokenEnv.isEmpty else { return }
            guard let token = environment[config.stats.bearerTokenEnv], !token.isEmpty else {
                throw ConfigError(
                    code: .missingEnvironment, file: file, key: "stats.bearer_token_env",
                    message: "environment variable \(config.stats.bearerTokenEnv) is not set")
            }
            config.stats.bearerToken = Secret(token)
        }
        check { () throws(ConfigError) in
            guard !config.stats.listen.isEmpty else { return }
            guard let address = StatsListenAddress(config.stats.listen) else {
                throw ConfigError(
                    code: .invalidValue, file: file, key: "stats.listen",
                    message: "'\(config.stats.listen)' is not host:port (use an empty string to disable)")
            }
            if let problem = address.exposureProblem(
                hasToken: config.stats.bearerToken != nil, allowUnauthenticated: config.stats.allowUnauthenticated)
            {
                throw ConfigError(code: .invalidValue, file: file, key: "stats.listen", message: problem)
            }
        }
        check { () throws(ConfigError) in
            guard !config.console.publicURL.isEmpty else { return }
            guard let url = URLComponents(string: config.console.publicURL),
                ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil, url.query == nil
            else {
                throw ConfigError(
                    code: .invalidValue, file: file, key: "console.public_url",
                    message: "'\(config.console.publicURL)' is not an http:// or https:// URL without a query")
            }
        }
        check { () throws(ConfigError) in
            guard let sourcesNode else { return }
            let (sources, sourceProblems) = try readSources(sourcesNode, environment: environment)
            config.sources = sources
            config.usesSourcesList = true
            problems += sourceProblems
        }
        check { () throws(ConfigError) in
            guard sourcesNode == nil else { return }
            if config.database.url.isEmpty, let metadata {
                config.database.url = try metadataDatabaseURL(metadata.databaseURL, environment: environment, file: file)
                config.database.urlOrigin = "the Hasura metadata's databases.yaml (hasura_metadata)"
            }
            // A copied tables.yaml has no databases.yaml either: Hasura read its variable.
            if config.database.url.isEmpty, bareTableList, let url = environment[hasuraDatabaseVariable], !url.isEmpty {
                config.database.url = url
                config.database.urlOrigin = "$\(hasuraDatabaseVariable)"
            }
            if config.database.url.isEmpty {
                throw ConfigError(
                    code: .missingKey, file: file, key: bareTableList ? nil : "database.url",
                    message: bareTableList
                        ? "this file is a bare Hasura table list, so the database URL must come from HERALD_DATABASE_URL or \(hasuraDatabaseVariable) (or put the list under tables: beside database.url)"
                        : "no database URL: set database.url or HERALD_DATABASE_URL")
            }
        }
        check { () throws(ConfigError) in
            guard sourcesNode == nil, let tables else { return }
            let (triggers, triggerProblems) = try TriggerParser(
                environment: environment, sourceName: metadata?.sourceName, isHasuraExport: metadata != nil || bareTableList
            ).parseAll(tables: tables)
            config.triggers = triggers
            problems += triggerProblems
        }
        check { () throws(ConfigError) in
            guard !bareTableList, let alerts = try document.child("alerts") else { return }
            config.alerts = try AlertsConfig.parse(alerts, environment: environment)
        }
        check { () throws(ConfigError) in
            guard !bareTableList, let consumers = try document.child("consumers") else { return }
            config.consumers = try ConsumerConfig.parseAll(consumers, environment: environment)
        }
        if sourcesNode == nil {
            var source = SourceConfig(name: SourceConfig.defaultName, triggers: config.triggers)
            source.database = config.database
            config.sources = [source]
        }
        check { () throws(ConfigError) in
            try addScheduledTriggers(
                inline: bareTableList ? nil : document.child("cron_triggers"), metadata: metadata?.cronTriggers,
                environment: environment, to: &config, problems: &problems)
        }
        for source in config.sources.indices {
            for index in config.sources[source].triggers.indices {
                config.sources[source].triggers[index].createdAtFormat = createdAtFormat
            }
        }
        if let first = config.sources.first {
            config.database = first.database
            config.triggers = first.triggers
        }
        problems += pullProblems(config, consumersParsed: !problems.contains { $0.key?.hasPrefix("consumers") ?? false })
        if leaseIsExplicit(document, bareTableList: bareTableList, environment: environment) {
            problems += leaseProblems(config)
        } else {
            deriveLease(&config)
        }
        if let combined = ConfigError.combining(problems) { throw combined }
        config.warnings = EnvironmentCheck.unknownVariableWarnings(
            environment: environment,
            referenced: EnvironmentCheck.mentionedVariables(in: document.node).union([config.stats.bearerTokenEnv]))
        return config
    }

    /// Cron triggers (inline `cron_triggers:` or the metadata's `cron_triggers.yaml`) and the
    /// route of one-off scheduled events join the first source: scheduled work lives in one
    /// database, as Hasura keeps it beside its metadata.
    private static func addScheduledTriggers(
        inline: ConfigNode?, metadata: ConfigNode?, environment: [String: String], to config: inout HeraldConfig,
        problems: inout [ConfigError]
    ) throws(ConfigError) {
        guard !config.sources.isEmpty else { return }
        if let inline, metadata != nil {
            throw inline.error(
                .invalidValue, "cron triggers come from hasura_metadata's cron_triggers.yaml here; remove cron_triggers")
        }
        if let list = inline ?? metadata {
            var taken: [String: ConfigLocation] = [:]
            for trigger in config.sources[0].triggers {
                taken[trigger.name] = trigger.location ?? ConfigLocation(file: config.file, line: nil)
            }
            let (cron, cronProblems) = try TriggerParser(environment: environment).parseCronTriggers(list, taken: taken)
            config.sources[0].triggers += cron
            problems += cronProblems
        }
        // Each one-off event brings its own timeout, kept below the lease when it is claimed.
        config.sources[0].triggers.append(
            TriggerConfig.oneOffRoute(timeoutSeconds: max(1, min(RetryConfig().timeoutSeconds, config.worker.leaseSeconds - 1))))
    }

    /// `hasura_metadata: DIR` (relative to this file) and the optional `hasura_source`.
    private static func readMetadata(_ document: ConfigNode, hasTables: Bool) throws(ConfigError) -> HasuraMetadata? {
        let source = try document.child("hasura_source")
        guard let key = try document.child("hasura_metadata") else {
            if let source { throw source.error(.invalidValue, "hasura_source is only read with hasura_metadata") }
            return nil
        }
        if hasTables {
            throw key.error(.invalidValue, "set either tables or hasura_metadata, not both")
        }
        return try HasuraMetadata.load(
            directory: key.path(relativeToFile: try key.string()), source: try source?.string(), key: key)
    }

    /// Hasura's own variable for its database, which a layout without `databases.yaml` relies on.
    static let hasuraDatabaseVariable = "HASURA_GRAPHQL_DATABASE_URL"

    /// The metadata's database URL, used only when neither database.url nor
    /// HERALD_DATABASE_URL is set.
    private static func metadataDatabaseURL(
        _ url: HasuraMetadata.DatabaseURL, environment: [String: String], file: String
    ) throws(ConfigError) -> String {
        switch url {
        case .literal(let text, let node):
            guard text.contains("{{") else { return text }
            return try TriggerParser(environment: environment)
                .expandTemplate(text, node: node, what: "the source's database_url")
        case .environment(let variable, let node):
            guard let value = environment[variable], !value.isEmpty else {
                throw node.error(
                    .missingEnvironment,
                    "environment variable \(variable) (the source's database URL) is not set; set it, HERALD_DATABASE_URL or database.url")
            }
            return value
        case .hasuraVariable:
            guard let value = environment[hasuraDatabaseVariable], !value.isEmpty else {
                throw ConfigError(
                    code: .missingKey, file: file, key: "database.url",
                    message: "no database URL: this Hasura export has no databases/databases.yaml, so set database.url, HERALD_DATABASE_URL or \(hasuraDatabaseVariable) (where Hasura read it)")
            }
            return value
        case .problem(let problem):
            throw problem
        }
    }

    static let sourceKeys: Set<String> = ["name", "database", "tables"]

    /// `sources:`: a list of `{name, database: {url | url_from_env}, tables}`. Returns the
    /// sources, as far as they could be read, with every problem, so all are reported at once.
    private static func readSources(_ node: ConfigNode, environment: [String: String]) throws(ConfigError)
        -> ([SourceConfig], [ConfigError])
    {
        var sources: [SourceConfig] = []
        var problems = ProblemList()
        var seen: [String: ConfigNode] = [:]
        let elements = try node.elements()
        if elements.isEmpty { throw node.error(.invalidValue, "sources lists no source") }
        for element in elements {
            problems.record(contentsOf: element.unknownKeyProblems(sourceKeys))
            guard let nameNode = problems.check({ () throws(ConfigError) in try element.required("name") }),
                let name = problems.check({ () throws(ConfigError) in try nameNode.string() })
            else { continue }
            if !SourceConfig.isValidName(name) {
                problems.record(
                    nameNode.error(
                        .invalidValue,
                        "invalid source name '\(name)': use letters, digits, '_' or '-', start with a letter, at most 63 characters"))
            }
            if let first = seen[name] {
                let where_ = first.line.map { " (first defined at line \($0))" } ?? ""
                problems.record(nameNode.error(.invalidValue, "duplicate source name '\(name)'\(where_)"))
            }
            seen[name] = seen[name] ?? nameNode
            var source = SourceConfig(name: name)
            // A source's URL problem hides not the problems of its triggers.
            source.database.url =
                problems.check { () throws(ConfigError) in
                    try sourceURL(try element.required("database"), source: name, environment: environment)
                } ?? ""
            source.database.urlOrigin = "the database of source '\(name)' in \(node.file)"
            if let tables = problems.check({ () throws(ConfigError) in try element.child("tables") }) ?? nil,
                let (triggers, triggerProblems) = problems.check({ () throws(ConfigError) in
                    try TriggerParser(environment: environment, sourceName: name).parseAll(tables: tables)
                })
            {
                source.triggers = triggers
                problems.record(contentsOf: triggerProblems)
            }
            sources.append(source)
        }
        return (sources, problems.all)
    }

    /// A source's `database`: `url: TEXT` or `url_from_env: NAME`, exactly one.
    /// `HERALD_DATABASE_URL` does not apply to sources (it could name only one of them).
    private static func sourceURL(_ node: ConfigNode, source: String, environment: [String: String]) throws(ConfigError)
        -> String
    {
        try node.rejectUnknownKeys(["url", "url_from_env"])
        switch (try node.child("url"), try node.child("url_from_env")) {
        case (let url?, nil):
            let text = try url.string()
            guard !text.isEmpty else { throw url.error(.invalidValue, "source '\(source)' has an empty database URL") }
            return text
        case (nil, let variable?):
            let name = try variable.string()
            guard let value = environment[name], !value.isEmpty else {
                throw variable.error(
                    .missingEnvironment, "environment variable \(name) (the database URL of source '\(source)') is not set")
            }
            return value
        case (.some, .some):
            throw node.error(.invalidValue, "source '\(source)': set either url or url_from_env, not both")
        case (nil, nil):
            throw node.error(.missingKey, "source '\(source)' has no database URL: set database.url or database.url_from_env")
        }
    }

    /// `payload_compat: {created_at: hasura}` for receivers that parse Hasura's naive timestamps.
    private static func readPayloadCompat(_ section: ConfigNode?) throws(ConfigError) -> CreatedAtFormat {
        guard let section else { return .utc }
        try section.rejectUnknownKeys(["created_at"])
        guard let node = try section.child("created_at") else { return .utc }
        let text = try node.string()
        guard let format = CreatedAtFormat(rawValue: text) else {
            throw node.error(.invalidValue, "unknown created_at format '\(text)' (expected herald or hasura)")
        }
        return format
    }

    /// Whether the lease was chosen: `worker.lease_seconds` in the file or
    /// `HERALD_WORKER_LEASE_SECONDS`. Only a chosen lease can be too short; otherwise it is derived.
    private static func leaseIsExplicit(
        _ document: ConfigNode, bareTableList: Bool, environment: [String: String]
    ) -> Bool {
        if let text = environment["HERALD_WORKER_LEASE_SECONDS"], !text.isEmpty { return true }
        guard !bareTableList else { return false }
        return (try? document.child("worker")?.child("lease_seconds")) != nil
    }

    /// Pull triggers name a configured consumer, are served on the worker's listener, and (for
    /// now) live in the single-database form.
    private static func pullProblems(_ config: HeraldConfig, consumersParsed: Bool) -> [ConfigError] {
        var problems: [ConfigError] = []
        let pulled = config.sources.flatMap(\.triggers).filter { $0.pullConsumer != nil }
        for trigger in pulled {
            let consumer = trigger.pullConsumer ?? ""
            if consumersParsed, !config.consumers.contains(where: { $0.name == consumer }) {
                problems.append(ConfigError(
                    code: .invalidValue, file: trigger.location?.file ?? config.file, line: trigger.location?.line,
                    key: "delivery.pull",
                    message: "trigger '\(trigger.name)' is pulled by consumer '\(consumer)', which consumers: does not define"))
            }
        }
        guard !pulled.isEmpty || !config.consumers.isEmpty else { return problems }
        if config.usesSourcesList {
            problems.append(ConfigError(
                code: .unsupported, file: config.file, key: "consumers",
                message: "pull consumers work with one database (database: and tables:), not with sources:"))
        }
        if config.stats.listen.isEmpty {
            problems.append(ConfigError(
                code: .missingKey, file: config.file, key: "stats.listen",
                message: "pull consumers are served on the worker's listener: set stats.listen (e.g. 127.0.0.1:9090)"))
        }
        return problems
    }

    /// A lease must outlive the longest request, or a second worker would take the event
    /// while the first is still sending it.
    private static func leaseProblems(_ config: HeraldConfig) -> [ConfigError] {
        config.sources.flatMap(\.triggers).filter {
            $0.name != TriggerConfig.oneOffName && $0.pullConsumer == nil && $0.retry.timeoutSeconds >= config.worker.leaseSeconds
        }.map { trigger in
            let timeout = trigger.retry.timeoutSeconds
            let (what, key) = timeoutNames(trigger)
            return ConfigError(
                code: .invalidValue, file: trigger.location?.file ?? config.file, line: trigger.location?.line,
                key: "worker.lease_seconds",
                message: "\(what) has \(key) \(timeout), not below lease_seconds (\(config.worker.leaseSeconds)): raise worker.lease_seconds (or HERALD_WORKER_LEASE_SECONDS) above \(timeout), or lower its retry_conf.\(key)")
        }
    }

    /// How messages name a trigger and its timeout key: a cron trigger's is Hasura's
    /// `timeout_seconds`, an event trigger's `timeout_sec`.
    private static func timeoutNames(_ trigger: TriggerConfig) -> (what: String, key: String) {
        trigger.isCronTrigger
            ? ("cron trigger '\(trigger.name)'", "timeout_seconds") : ("trigger '\(trigger.name)'", "timeout_sec")
    }

    /// Without a chosen lease, one that every timeout fits (Hasura accepts `timeout_sec: 300`
    /// and more, which the default lease would refuse): ``WorkerSettings/derivedLeaseSeconds(longestTimeout:)``
    /// of the longest timeout of an event or cron trigger, never below the default. One-off
    /// events are left out: each brings its own timeout, kept below the lease when claimed.
    private static func deriveLease(_ config: inout HeraldConfig) {
        // The first of the longest (strictly longer replaces), so the summary names the one a
        // reader meets first in the file.
        var longest: (trigger: TriggerConfig, source: String?)?
        for source in config.sources {
            for trigger in source.triggers
            where trigger.name != TriggerConfig.oneOffName && trigger.pullConsumer == nil
                && trigger.retry.timeoutSeconds > longest?.trigger.retry.timeoutSeconds ?? 0
            {
                longest = (trigger, config.usesSourcesList ? source.name : nil)
            }
        }
        guard let longest else { return }
        let timeout = longest.trigger.retry.timeoutSeconds
        let lease = WorkerSettings.derivedLeaseSeconds(longestTimeout: timeout)
        guard lease > config.worker.leaseSeconds else { return }
        config.worker.leaseSeconds = lease
        config.worker.leaseOrigin = .derived(
            from: timeoutNames(longest.trigger).what + (longest.source.map { " of source '\($0)'" } ?? ""),
            timeoutSeconds: timeout)
    }

    // MARK: Settings sections

    private static func readIntegers<Root>(
        _ section: ConfigNode, _ settings: [IntegerSetting<Root>], into target: inout Root
    ) throws(ConfigError) {
        try section.rejectUnknownKeys(Set(settings.map(\.key)))
        for setting in settings {
            guard let node = try section.child(setting.key) else { continue }
            let value = try node.int()
            guard value >= setting.minimum else {
                throw node.error(.invalidValue, "must be at least \(setting.minimum) (got \(value))")
            }
            target[keyPath: setting.keyPath] = value
        }
    }

    private static func readStrings<Root>(
        _ section: ConfigNode, _ settings: [StringSetting<Root>], into target: inout Root, alsoAllowed: Set<String> = []
    ) throws(ConfigError) {
        try section.rejectUnknownKeys(Set(settings.map(\.key)).union(alsoAllowed))
        for setting in settings {
            guard let node = try section.child(setting.key) else { continue }
            target[keyPath: setting.keyPath] = try node.string()
        }
    }

    /// Durations such as `7d`; each key can be overridden by `HERALD_RETENTION_<KEY>`.
    private static func readRetention(
        _ section: ConfigNode?, environment: [String: String], file: String, into retention: inout RetentionSettings
    ) throws(ConfigError) {
        if let section { try section.rejectUnknownKeys(Set(RetentionSettings.keys)) }
        for key in RetentionSettings.keys {
            let variable = "HERALD_RETENTION_\(key.uppercased())"
            let text: String
            let fail: (String) -> ConfigError
            if let value = environment[variable] {
                text = value
                fail = { ConfigError(code: .invalidValue, file: file, key: "$\(variable)", message: $0) }
            } else if let node = try section?.child(key) {
                text = try node.string()
                fail = { node.error(.invalidValue, $0) }
            } else {
                continue
            }
            if text.isEmpty { continue }
            guard let seconds = DurationText.seconds(text), seconds > 0 else {
                throw fail(DurationText.problem(text, in: "value"))
            }
            switch key {
            case "delivered_after": retention.deliveredAfterSeconds = seconds
            case "failed_after": retention.failedAfterSeconds = seconds
            default: retention.intervalSeconds = seconds
            }
        }
    }

    /// Every `HERALD_<SECTION>_<KEY>` variable ``applyOverrides(_:file:to:)`` and
    /// ``readRetention(_:environment:file:into:)`` read, for naming the misspelt ones.
    static var overrideVariables: Set<String> {
        var names = WorkerSettings.integerSettings.map { "HERALD_WORKER_\($0.key.uppercased())" }
        names += StatsSettings.stringSettings.map { "HERALD_STATS_\($0.key.uppercased())" }
        names += DatabaseSettings.stringSettings.map { "HERALD_DATABASE_\($0.key.uppercased())" }
        names += RetentionSettings.keys.map { "HERALD_RETENTION_\($0.uppercased())" }
        names += ["HERALD_STATS_ALLOW_UNAUTHENTICATED", "HERALD_STATS_IDLE_TIMEOUT_SECONDS"]
        names += ConsoleSettings.keys.map { "HERALD_CONSOLE_\($0.uppercased())" }
        return Set(names)
    }

    /// `HERALD_<SECTION>_<KEY>` beats the file, so a systemd `EnvironmentFile=` can tune a
    /// deployment without editing it.
    private static func applyOverrides(
        _ environment: [String: String], file: String, to config: inout HeraldConfig
    ) throws(ConfigError) {
        for setting in WorkerSettings.integerSettings {
            let variable = "HERALD_WORKER_\(setting.key.uppercased())"
            guard let text = environment[variable], !text.isEmpty else { continue }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value >= setting.minimum else {
                throw ConfigError(
                    code: .invalidValue, file: file, key: "$\(variable)",
                    message: "must be an integer of at least \(setting.minimum) (got '\(text)')")
            }
            config.worker[keyPath: setting.keyPath] = value
        }
        for setting in StatsSettings.stringSettings {
            if let value = environment["HERALD_STATS_\(setting.key.uppercased())"] {
                config.stats[keyPath: setting.keyPath] = value
            }
        }
        if let text = environment["HERALD_STATS_ALLOW_UNAUTHENTICATED"], !text.isEmpty {
            config.stats.allowUnauthenticated = try boolean(text, variable: "HERALD_STATS_ALLOW_UNAUTHENTICATED", file: file)
        }
        if let text = environment["HERALD_CONSOLE_ENABLED"], !text.isEmpty {
            config.console.enabled = try boolean(text, variable: "HERALD_CONSOLE_ENABLED", file: file)
        }
        if let text = environment["HERALD_CONSOLE_READ_ONLY"], !text.isEmpty {
            config.console.readOnly = try boolean(text, variable: "HERALD_CONSOLE_READ_ONLY", file: file)
        }
        if let text = environment["HERALD_CONSOLE_PUBLIC_URL"] {
            config.console.publicURL = text
        }
        if let value = try positive(environment, "HERALD_STATS_IDLE_TIMEOUT_SECONDS", file: file) {
            config.stats.idleTimeoutSeconds = value
        }
        if let value = try positive(environment, "HERALD_CONSOLE_CONNECTIONS", file: file) {
            config.console.connections = value
        }
        for setting in DatabaseSettings.stringSettings {
            if let value = environment["HERALD_DATABASE_\(setting.key.uppercased())"], !value.isEmpty {
                config.database[keyPath: setting.keyPath] = value
            }
        }
        if let value = environment["HERALD_DATABASE_URL"], !value.isEmpty {
            config.database.urlOrigin =
                config.database.urlOrigin.isEmpty
                ? "$HERALD_DATABASE_URL" : "$HERALD_DATABASE_URL, which overrides \(config.database.urlOrigin)"
        }
    }

    /// An integer setting of at least 1 outside the integer tables (its section mixes types).
    private static func positive(_ node: ConfigNode?) throws(ConfigError) -> Int? {
        guard let node else { return nil }
        let value = try node.int()
        guard value >= 1 else { throw node.error(.invalidValue, "must be at least 1 (got \(value))") }
        return value
    }

    private static func positive(_ environment: [String: String], _ variable: String, file: String) throws(ConfigError)
        -> Int?
    {
        guard let text = environment[variable], !text.isEmpty else { return nil }
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value >= 1 else {
            throw ConfigError(
                code: .invalidValue, file: file, key: "$\(variable)", message: "must be an integer of at least 1 (got '\(text)')")
        }
        return value
    }

    private static func boolean(_ text: String, variable: String, file: String) throws(ConfigError) -> Bool {
        switch text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default:
            throw ConfigError(code: .invalidValue, file: file, key: "$\(variable)", message: "expected true or false (got '\(text)')")
        }
    }
}
