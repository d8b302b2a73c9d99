import Foundation

/// Console login sessions in `herald.console_sessions`, keyed by a hash of the session id
/// (``ConsoleAuth/sessionHash(_:)``), never the id itself. Every statement about sessions
/// lives here.
///
/// Writes run in `BEGIN READ WRITE`: a read-only console's connections default to read-only
/// transactions, and sessions are the one thing it writes (its role then needs INSERT and
/// UPDATE on this table alone).
public enum ConsoleSessions {
    /// Records a new session and drops expired ones, so the table stays as small as the
    /// number of live logins.
    static func create(
        _ connection: PGConnection, hash: String, lifetimeSeconds: Int, userAgent: String?, remoteAddress: String?
    ) throws {
        try writing(connection) {
            try connection.query("DELETE FROM herald.console_sessions WHERE expires_at < now()")
            try connection.query(
                """
                INSERT INTO herald.console_sessions (id_hash, expires_at, user_agent, remote_addr)
                VALUES (decode($1, 'hex'), now() + make_interval(secs => $2::int), $3, $4)
                """,
                [hash, String(lifetimeSeconds), userAgent.map { String($0.prefix(256)) }, remoteAddress])
        }
    }

    /// Whether `hash` names a session that is neither revoked nor expired. `last_seen` is
    /// written at most once a minute, so browsing does not turn every page into a write.
    static func isLive(_ connection: PGConnection, hash: String) throws -> Bool {
        let found = try connection.query(
            """
            SELECT last_seen < now() - interval '1 minute' FROM herald.console_sessions
            WHERE id_hash = decode($1, 'hex') AND revoked_at IS NULL AND expires_at > now()
            """, [hash])
        guard found.rowCount == 1 else { return false }
        if try found.decode(Bool.self, row: 0, column: 0) {
            try writing(connection) {
                try connection.query(
                    "UPDATE herald.console_sessions SET last_seen = now() WHERE id_hash = decode($1, 'hex')", [hash])
            }
        }
        return true
    }

    /// Ends one session (logout): its cookie stops working at once, wherever it was copied.
    static func revoke(_ connection: PGConnection, hash: String) throws {
        try writing(connection) {
            try connection.query(
                "UPDATE herald.console_sessions SET revoked_at = now() WHERE id_hash = decode($1, 'hex') AND revoked_at IS NULL",
                [hash])
        }
    }

    /// Ends every live session (`herald console-logout --all`) and drops expired ones;
    /// returns how many were live.
    public static func revokeAll(_ connection: PGConnection) throws -> Int {
        try writing(connection) {
            try connection.query("DELETE FROM herald.console_sessions WHERE expires_at < now()")
            let revoked = try connection.query(
                "UPDATE herald.console_sessions SET revoked_at = now() WHERE revoked_at IS NULL RETURNING 1")
            return revoked.rowCount
        }
    }

    private static func writing<T>(_ connection: PGConnection, _ body: () throws -> T) throws -> T {
        try connection.execute(script: "BEGIN READ WRITE")
        do {
            let value = try body()
            try connection.execute(script: "COMMIT")
            return value
        } catch {
            if connection.isOpen { try? connection.execute(script: "ROLLBACK") }
            throw error
        }
    }
}
