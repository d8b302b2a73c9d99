import Foundation
import Yams

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
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(
                code: .fileUnreadable, file: path, message: "cannot read configuration file (\(error.localizedDescription))")
        }
        return try parse(yaml: text, file: path, environment: environment)
    }

    public static func parse(yaml: String, file: String, environment: [String: String]) throws(ConfigError)
        -> HeraldConfig
    {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw ConfigError(code: .syntax, file: file, message: "the file is empty")
            }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            let (line, problem) = Self.location(of: error)
            throw ConfigError(code: .syntax, file: file, line: line, message: "invalid YAML: \(problem)")
        } catch {
            throw ConfigError(code: .syntax, file: file, message: "invalid YAML: \(error)")
        }

        let document = ConfigNode(file: file, node: root, path: "")
        try document.rejectUnknownKeys(["database", "worker", "stats", "console", "retention", "tables"])

        var config = HeraldConfig(file: file)
        if let section = try document.child("database") {
            try readStrings(section, DatabaseSettings.stringSettings, into: &config.database)
        }
        if let section = try document.child("worker") {
            try readIntegers(section, WorkerSettings.integerSettings, into: &config.worker)
        }
        if let section = try document.child("stats") {
            try readStrings(
                section, StatsSettings.stringSettings, into: &config.stats, alsoAllowed: ["allow_unauthenticated"])
            config.stats.allowUnauthenticated = try section.child("allow_unauthenticated")?.bool() ?? false
        }
        if let section = try document.child("console") {
            try section.rejectUnknownKeys(Set(ConsoleSettings.keys))
            config.console.enabled = try section.child("enabled")?.bool() ?? true
            config.console.readOnly = try section.child("read_only")?.bool() ?? false
            config.console.publicURL = try section.child("public_url")?.string() ?? ""
        }
        try readRetention(document.child("retention"), environment: environment, file: file, into: &config.retention)
        try applyOverrides(environment, file: file, to: &config)
        if !config.stats.bearerTokenEnv.isEmpty {
            guard let token = environment[config.stats.bearerTokenEnv], !token.isEmpty else {
                throw ConfigError(
                    code: .missingEnvironment, file: file, key: "stats.bearer_token_env",
                    message: "environment variable \(config.stats.bearerTokenEnv) is not set")
            }
            config.stats.bearerToken = Secret(token)
        }
        if !config.stats.listen.isEmpty {
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
        if !config.console.publicURL.isEmpty {
            guard let url = URLComponents(string: config.console.publicURL),
                ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil, url.query == nil
            else {
                throw ConfigError(
                    code: .invalidValue, file: file, key: "console.public_url",
                    message: "'\(config.console.publicURL)' is not an http:// or https:// URL without a query")
            }
        }
        if config.database.url.isEmpty {
            throw ConfigError(
                code: .missingKey, file: file, key: "database.url",
                message: "no database URL: set database.url or HERALD_DATABASE_URL")
        }
        if let tables = try document.child("tables") {
            config.triggers = try TriggerParser(environment: environment).parse(tables: tables)
        }
        // A lease must outlive the longest request, or a second worker would take the event
        // while the first is still sending it.
        for trigger in config.triggers where trigger.retry.timeoutSeconds >= config.worker.leaseSeconds {
            throw ConfigError(
                code: .invalidValue, file: file, key: "worker.lease_seconds",
                message: "lease_seconds (\(config.worker.leaseSeconds)) must exceed timeout_sec of trigger '\(trigger.name)' (\(trigger.retry.timeoutSeconds))")
        }
        return config
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
                throw fail("'\(text)' is not a duration such as 12h, 7d or 2w")
            }
            switch key {
            case "delivered_after": retention.deliveredAfterSeconds = seconds
            case "failed_after": retention.failedAfterSeconds = seconds
            default: retention.intervalSeconds = seconds
            }
        }
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
        for setting in DatabaseSettings.stringSettings {
            if let value = environment["HERALD_DATABASE_\(setting.key.uppercased())"], !value.isEmpty {
                config.database[keyPath: setting.keyPath] = value
            }
        }
    }

    private static func boolean(_ text: String, variable: String, file: String) throws(ConfigError) -> Bool {
        switch text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default:
            throw ConfigError(code: .invalidValue, file: file, key: "$\(variable)", message: "expected true or false (got '\(text)')")
        }
    }

    private static func location(of error: YamlError) -> (line: Int?, problem: String) {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let prefix = context.map { "\($0.text) " } ?? ""
            return (mark.line, prefix + problem)
        default:
            return (nil, "\(error)")
        }
    }
}
