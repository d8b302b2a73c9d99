import Logging
import Yams

/// The environment Herald reads besides what the file names: the log level and the
/// `HERALD_<SECTION>_<KEY>` overrides. A misspelt name there is otherwise ignored in silence
/// (`HERALD_WORKER_HTTP_POOL_SIZ=5` leaves the pool at 100), so it is named with the
/// variable it most likely meant.
public enum EnvironmentCheck {
    /// What `--log-level` and `HERALD_LOG_LEVEL` accept, in swift-log's order.
    public static let logLevelNames = Logger.Level.allCases.map(\.rawValue)

    /// The level `option` (from `--log-level`) or else `HERALD_LOG_LEVEL` names, `info`
    /// when neither is set.
    /// - Throws: a ``ConfigError`` naming where the value came from and every valid level.
    public static func logLevel(option: String?, environment: [String: String]) throws(ConfigError) -> Logger.Level {
        let (text, origin) =
            option.map { ($0, "--log-level") }
            ?? environment["HERALD_LOG_LEVEL"].flatMap { $0.isEmpty ? nil : ($0, "$HERALD_LOG_LEVEL") }
            ?? ("info", "")
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            // The error's file is where the value came from, which leads its message as a
            // file name would: "--log-level: unknown log level 'verbose' (…)".
            throw ConfigError(
                code: .invalidValue, file: origin, key: nil,
                message: "unknown log level '\(text)' (expected one of: \(logLevelNames.joined(separator: ", ")))")
        }
        return level
    }

    /// Every variable Herald itself reads.
    static var knownVariables: Set<String> {
        var names: Set<String> = ["HERALD_CONFIG", "HERALD_LOG_LEVEL"]
        names.formUnion(ConfigLoader.overrideVariables)
        return names
    }

    /// Variables Herald's own scripts and tests set, which reach a worker they start.
    static let developmentPrefixes = ["HERALD_PG_", "HERALD_TEST_"]
    static let developmentVariables: Set<String> = ["HERALD_INTEGRATION", "HERALD_APT_PACKAGES", "HERALD_UPDATE_SCREENSHOTS"]

    /// One warning per `HERALD_*` variable in `environment` that Herald does not read and the
    /// configuration does not name (`value_from_env: HERALD_ALERTS_SECRET` is a user's own
    /// variable, not a typo), with the closest valid name when there is a likely one.
    static func unknownVariableWarnings(environment: [String: String], referenced: Set<String>) -> [String] {
        let known = knownVariables
        return environment.keys.filter { name in
            name.hasPrefix("HERALD_") && !known.contains(name) && !referenced.contains(name)
                && !developmentVariables.contains(name) && !developmentPrefixes.contains { name.hasPrefix($0) }
        }.sorted().map { name in
            let hint =
                ClosestName.suggestion(for: name, among: known).map { "did you mean \($0)?" }
                ?? "Herald reads HERALD_<SECTION>_<KEY> for the keys under worker, stats, console, database and retention"
            return "environment variable \(name) is not a Herald setting and is ignored (\(hint))"
        }
    }

    /// The `HERALD_*` names that appear in the file's values (`value_from_env: NAME`,
    /// `{{NAME}}`, `bearer_token_env: NAME`).
    static func mentionedVariables(in node: Node) -> Set<String> {
        switch node {
        case .scalar(let scalar):
            return Set(scalar.string.matches(of: /HERALD_[A-Z0-9_]+/).map { String($0.output) })
        case .mapping(let mapping):
            return mapping.reduce(into: Set<String>()) { $0.formUnion(mentionedVariables(in: $1.value)) }
        case .sequence(let sequence):
            return sequence.reduce(into: Set<String>()) { $0.formUnion(mentionedVariables(in: $1)) }
        case .alias:
            return []
        }
    }
}
