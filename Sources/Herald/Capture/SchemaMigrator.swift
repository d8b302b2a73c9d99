/// One file of `sql/`, as carried in the binary.
public struct SchemaFile: Sendable, Equatable {
    public var version: Int
    public var name: String
    public var sql: String
}

/// Brings schema `herald` to the version this binary carries. Migrations run in the
/// caller's transaction, so a failure part way leaves the database as it was.
public enum SchemaMigrator {
    /// Serialises concurrent installs (two deploys at once) on one database.
    static let advisoryLockKey = "7236213470021"

    public static var migrations: [SchemaFile] { SchemaSQL.migrations }
    public static var bootstrap: SchemaFile { SchemaSQL.bootstrap }
    public static var latestVersion: Int { SchemaSQL.migrations.map(\.version).max() ?? 0 }

    /// The version recorded in the database; 0 when Herald was never installed.
    public static func currentVersion(_ connection: PGConnection) throws(PGError) -> Int {
        let exists = try connection.query("SELECT to_regclass('herald.schema_version') IS NOT NULL")
        guard try exists.decode(Bool.self, row: 0, column: 0) else { return 0 }
        let result = try connection.query("SELECT coalesce(max(version), 0) FROM herald.schema_version")
        return try result.decode(Int.self, row: 0, column: 0)
    }

    /// Migrations newer than the database's version (and not newer than `target`).
    public static func pending(_ connection: PGConnection, upTo target: Int? = nil) throws(PGError) -> [SchemaFile] {
        let current = try currentVersion(connection)
        let limit = target ?? latestVersion
        return migrations.filter { $0.version > current && $0.version <= limit }
    }

    /// Applies the pending migrations inside the caller's open transaction and returns them.
    @discardableResult
    public static func apply(_ connection: PGConnection, upTo target: Int? = nil) throws(PGError) -> [SchemaFile] {
        try connection.query("SELECT pg_advisory_xact_lock($1::bigint)", [advisoryLockKey])
        let current = try currentVersion(connection)
        if current > latestVersion {
            throw PGError(
                code: .unexpectedResult,
                message: "schema herald is at version \(current), newer than this herald binary knows (\(latestVersion)); upgrade herald")
        }
        try connection.execute(script: bootstrap.sql)
        let pending = try self.pending(connection, upTo: target)
        for migration in pending {
            try connection.execute(script: migration.sql)
            try connection.query(
                "INSERT INTO herald.schema_version (version, name) VALUES ($1, $2)",
                [String(migration.version), migration.name])
        }
        return pending
    }
}
