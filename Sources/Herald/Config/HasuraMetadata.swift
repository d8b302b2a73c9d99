import Foundation

/// The directory `hasura metadata export` writes, read as it is: `databases/databases.yaml`
/// lists the sources (each with its database URL and `tables: "!include …/tables.yaml"`),
/// and `tables.yaml` `!include`s one file per table. Older (config v2) exports keep a single
/// `tables.yaml` at the top of the directory; that is read too.
struct HasuraMetadata {
    /// Where the source's database URL comes from.
    enum DatabaseURL {
        case literal(String)
        case environment(String, node: ConfigNode)
        /// Neither form Herald reads (e.g. `connection_parameters`): `database.url` must be set.
        case unavailable(ConfigNode?)
    }

    var sourceName: String?
    var databaseURL: DatabaseURL
    /// The source's table list, includes not yet followed (``TriggerParser`` does that).
    var tables: ConfigNode
    /// `cron_triggers.yaml` at the top of the directory, when the export has one.
    var cronTriggers: ConfigNode? = nil

    /// - Parameters:
    ///   - directory: the metadata directory (absolute, or relative to the config file).
    ///   - source: which source to read when `databases.yaml` lists several.
    static func load(directory: String, source: String?, key: ConfigNode) throws(ConfigError) -> HasuraMetadata {
        let root = URL(fileURLWithPath: directory)
        var metadata = try loadSource(root: root, directory: directory, source: source, key: key)
        let cron = root.appendingPathComponent("cron_triggers.yaml").path
        if FileManager.default.fileExists(atPath: cron) {
            metadata.cronTriggers = try ConfigFile.load(path: cron)
        }
        return metadata
    }

    private static func loadSource(root: URL, directory: String, source: String?, key: ConfigNode) throws(ConfigError)
        -> HasuraMetadata
    {
        let databases = root.appendingPathComponent("databases/databases.yaml").path
        let legacyTables = root.appendingPathComponent("tables.yaml").path
        let manager = FileManager.default
        if !manager.fileExists(atPath: databases) {
            if manager.fileExists(atPath: legacyTables) {
                return HasuraMetadata(
                    sourceName: nil, databaseURL: .unavailable(nil), tables: try ConfigFile.load(path: legacyTables))
            }
            throw key.error(
                .fileUnreadable,
                "\(directory) is not a Hasura metadata directory: it has no databases/databases.yaml (written by `hasura metadata export`)")
        }
        let list = try ConfigFile.load(path: databases)
        var named: [(name: String, node: ConfigNode)] = []
        var postgres: [ConfigNode] = []
        for entry in try list.elements() {
            named.append((try entry.required("name").string(), entry))
            if try (entry.child("kind")?.string() ?? "postgres") == "postgres" { postgres.append(entry) }
        }
        let chosen: ConfigNode
        if let source {
            guard let match = named.first(where: { $0.name == source }) else {
                throw key.error(
                    .invalidValue,
                    "\(databases) has no source '\(source)' (it lists: \(named.map(\.name).joined(separator: ", ")))")
            }
            chosen = match.node
        } else {
            guard postgres.count == 1 else {
                var names: [String] = []
                for entry in postgres { names.append(try entry.required("name").string()) }
                throw key.error(
                    .invalidValue,
                    postgres.isEmpty
                        ? "\(databases) lists no PostgreSQL source"
                        : "\(databases) lists several PostgreSQL sources (\(names.joined(separator: ", "))): choose one with hasura_source")
            }
            chosen = postgres[0]
        }
        if let kind = try chosen.child("kind"), try kind.string() != "postgres" {
            throw kind.error(.unsupported, "Herald serves PostgreSQL sources only (this one is \(try kind.string()))")
        }
        let name = try chosen.required("name").string()
        let tables = try chosen.child("tables")?.resolvingInclude()
            ?? ConfigNode(file: databases, node: .sequence(.init([])), path: "")
        return HasuraMetadata(sourceName: name, databaseURL: try databaseURL(of: chosen), tables: tables)
    }

    /// `configuration.connection_info.database_url`: a string, or `{from_env: NAME}`.
    private static func databaseURL(of source: ConfigNode) throws(ConfigError) -> DatabaseURL {
        guard let url = try source.child("configuration")?.child("connection_info")?.child("database_url") else {
            return .unavailable(source)
        }
        if case .scalar = url.node { return .literal(try url.string()) }
        if let variable = try url.child("from_env") { return .environment(try variable.string(), node: variable) }
        return .unavailable(url)
    }
}
