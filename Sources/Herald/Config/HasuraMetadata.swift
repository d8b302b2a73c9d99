import Foundation

/// The directory `hasura metadata export` writes, read as it is: `databases/databases.yaml`
/// lists the sources (each with its database URL and `tables: "!include …/tables.yaml"`),
/// and `tables.yaml` `!include`s one file per table. Older (config v2) exports keep a single
/// `tables.yaml` at the top of the directory; that is read too.
struct HasuraMetadata {
    /// Where the source's database URL comes from.
    enum DatabaseURL {
        /// A string; Hasura fills `{{NAME}}` in it from the environment, as in a webhook.
        case literal(String, node: ConfigNode)
        case environment(String, node: ConfigNode)
        /// A layout without `databases.yaml` (config v2): Hasura read `HASURA_GRAPHQL_DATABASE_URL`.
        case hasuraVariable
        /// A form Herald does not read (`dynamic_from_file`), or one with problems; reported
        /// only when neither `database.url` nor `HERALD_DATABASE_URL` is set.
        case problem(ConfigError)
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
        let root = URL(fileURLWithPath: directory).standardized
        // Every file of the export may include others only inside the metadata directory
        // (unless the configuration allowed includes anywhere: the key node has no root).
        let includeRoot: String?? = .some(key.includeRoot == nil ? nil : root.path)
        var metadata = try loadSource(root: root, directory: directory, source: source, key: key, includeRoot: includeRoot)
        let cron = root.appendingPathComponent("cron_triggers.yaml").path
        if FileManager.default.fileExists(atPath: cron) {
            metadata.cronTriggers = try ConfigFile.load(path: cron, includeRoot: includeRoot)
        }
        return metadata
    }

    private static func loadSource(
        root: URL, directory: String, source: String?, key: ConfigNode, includeRoot: String??
    ) throws(ConfigError) -> HasuraMetadata {
        let databases = root.appendingPathComponent("databases/databases.yaml").path
        let legacyTables = root.appendingPathComponent("tables.yaml").path
        let manager = FileManager.default
        if !manager.fileExists(atPath: databases) {
            if manager.fileExists(atPath: legacyTables) {
                return HasuraMetadata(
                    sourceName: nil, databaseURL: .hasuraVariable, tables: try ConfigFile.load(path: legacyTables, includeRoot: includeRoot))
            }
            throw key.error(
                .fileUnreadable,
                "\(directory) is not a Hasura metadata directory: it has no databases/databases.yaml (written by `hasura metadata export`)")
        }
        let list = try ConfigFile.load(path: databases, includeRoot: includeRoot)
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

    /// `configuration.connection_info.database_url`: a string, `{from_env: NAME}` or
    /// `{connection_parameters: {host, port, database, username, password}}`.
    private static func databaseURL(of source: ConfigNode) throws(ConfigError) -> DatabaseURL {
        guard let url = try source.child("configuration")?.child("connection_info")?.child("database_url") else {
            return .problem(
                source.error(
                    .missingKey,
                    "the source has no configuration.connection_info.database_url; set database.url or HERALD_DATABASE_URL"))
        }
        if case .scalar = url.node { return .literal(try url.string(), node: url) }
        if let variable = try url.child("from_env") { return .environment(try variable.string(), node: variable) }
        if let parameters = try url.child("connection_parameters") {
            do throws(ConfigError) {
                return .literal(try connectionURL(parameters), node: parameters)
            } catch {
                return .problem(error)
            }
        }
        return .problem(
            url.error(
                .unsupported,
                "Herald reads database_url as a string, {from_env: NAME} or {connection_parameters: …}; set database.url or HERALD_DATABASE_URL"))
    }

    /// Hasura's `PGConnectionParameters` as a libpq URI, with every problem of the block at
    /// once. Like Hasura (its API reference and its parser), the values are plain: `host`,
    /// `username` and `database` strings and `port` an integer are required, `password` is
    /// optional; Hasura reads no `from_env` inside, so a mapping there is refused by name.
    static func connectionURL(_ node: ConfigNode) throws(ConfigError) -> String {
        var problems = ProblemList()
        problems.record(contentsOf: node.unknownKeyProblems(["host", "port", "database", "username", "password"]))
        func text(_ key: String, required: Bool) -> String? {
            problems.check { () throws(ConfigError) -> String? in
                guard let value = try node.child(key) else {
                    if required { throw node.error(.missingKey, "connection_parameters lacks '\(key)'") }
                    return nil
                }
                guard case .scalar = value.node else {
                    throw value.error(
                        .wrongType,
                        "expected a plain value: Hasura reads connection_parameters.\(key) as a string, not from the environment; use database_url: {from_env: NAME} for a URL from the environment")
                }
                let text = try value.string()
                if required, text.isEmpty { throw value.error(.invalidValue, "must not be empty") }
                return text
            } ?? nil
        }
        let host = text("host", required: true)
        let username = text("username", required: true)
        let password = text("password", required: false)
        let database = text("database", required: true)
        let port = problems.check { () throws(ConfigError) -> Int in
            let value = try node.child("port")
            guard let value else { throw node.error(.missingKey, "connection_parameters lacks 'port'") }
            let port = try value.int()
            guard (1...65535).contains(port) else { throw value.error(.invalidValue, "port \(port) is not between 1 and 65535") }
            return port
        }
        try problems.throwIfAny()
        guard let host, let username, let database, let port else {
            throw node.error(.invalidValue, "connection_parameters is incomplete")
        }
        return PostgresURI.make(host: host, port: port, database: database, username: username, password: password)
    }
}

/// Builds libpq connection URIs from their parts.
enum PostgresURI {
    /// `postgresql://user:password@host:port/database`, each part percent-encoded so that
    /// `@`, `:`, `/`, `%` or `?` in a password (or anywhere else) keep their place, as libpq
    /// requires. An IPv6 address goes in brackets; a socket directory (`/var/run/postgresql`)
    /// is percent-encoded, which libpq accepts as a host.
    static func make(host: String, port: Int, database: String, username: String, password: String?) -> String {
        let hostPart =
            if host.hasPrefix("[") { host } else if host.contains(":") { "[\(host)]" } else { encode(host) }
        let userInfo = encode(username) + (password.map { ":" + encode($0) } ?? "")
        return "postgresql://\(userInfo)@\(hostPart):\(port)/\(encode(database))"
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters.
    static func encode(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }
}
