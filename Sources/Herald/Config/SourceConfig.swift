/// One database Herald serves (Hasura calls it a source): its URL and its triggers.
/// The single-database form (`database:` + `tables:`) is one source named `default`.
public struct SourceConfig: Sendable, Equatable {
    /// The name of the source of a single-database configuration (Hasura's default too).
    public static let defaultName = "default"

    public var name: String
    public var database = DatabaseSettings()
    public var triggers: [TriggerConfig] = []
    /// Set on a source the worker adds for a Citus worker node of a coordinator source
    /// (``CitusSources``): its log holds the events of the shards the node keeps.
    public var citusNode: CitusNode?
    /// A Citus worker node's coordinator database: shared rate-limit tokens are reserved
    /// there, so a shared limit holds across the nodes.
    public var citusCoordinatorDatabase: DatabaseSettings?
    /// Set on a source whose database was found to be a Citus coordinator: its worker nodes
    /// are followed while the worker runs (``CitusNodeWatch``).
    public var citusCoordinator = false

    public init(name: String, url: String = "", triggers: [TriggerConfig] = []) {
        self.name = name
        database.url = url
        self.triggers = triggers
    }

    /// Hasura's rule for source names is loose; Herald's is strict enough for a metric label,
    /// a log field and a command-line argument.
    static func isValidName(_ name: String) -> Bool {
        name.wholeMatch(of: /[A-Za-z][A-Za-z0-9_\-]*/) != nil && name.count <= 63
    }
}

extension HeraldConfig {
    /// Every trigger of every source with its source, in file order: what per-trigger state
    /// beside other sources' (flow control, metrics) is keyed by.
    public var triggersBySource: [(ref: TriggerRef, trigger: TriggerConfig)] {
        sources.flatMap { source in source.triggers.map { (TriggerRef(source: source.name, name: $0.name), $0) } }
    }

    /// The configuration as one source sees it: `database` and `triggers` are that source's,
    /// `sources` holds it alone. Every per-database part (claimer, recorder, CLI command)
    /// works on such a view.
    public func scoped(to source: SourceConfig) -> HeraldConfig {
        var copy = self
        copy.database = source.database
        copy.triggers = source.triggers
        copy.sources = [source]
        return copy
    }

    /// The source named `name`, or, with `name` nil, the only one.
    /// - Throws: a message naming the sources when `name` is unknown, or nil with several.
    public func source(named name: String?) throws(ConfigError) -> SourceConfig {
        let names = sources.map(\.name).joined(separator: ", ")
        guard let name else {
            guard sources.count == 1 else {
                throw ConfigError(
                    code: .missingKey, file: file, key: "sources",
                    message: "the configuration has several sources (\(names)): choose one with --source NAME")
            }
            return sources[0]
        }
        guard let source = sources.first(where: { $0.name == name }) else {
            throw ConfigError(
                code: .invalidValue, file: file, key: "sources",
                message: "no source named '\(name)' (the configuration has: \(names))")
        }
        return source
    }
}
