/// An error from PostgreSQL or from talking to it.
///
/// One type for every database failure, in the manner of postgres-nio's `PSQLError`: a
/// stable ``Code`` to branch on, and the server's own fields (SQLSTATE, message, detail,
/// hint) for people. The connection URL never appears here: it may carry a password.
public struct PGError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String {
            case connectionFailed
            case connectionLost
            case queryFailed
            case unexpectedResult
            case schemaNotReady
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Could not open a connection (bad URL, server down, authentication).
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke while in use.
        public static let connectionLost = Code(.connectionLost)
        /// The server rejected a statement; see ``PGError/sqlState``.
        public static let queryFailed = Code(.queryFailed)
        /// The server answered with something Herald did not expect.
        public static let unexpectedResult = Code(.unexpectedResult)
        /// Schema `herald` is missing, older or newer than this binary: `install-triggers` (or
        /// an upgrade) is the fix, which the message says.
        public static let schemaNotReady = Code(.schemaNotReady)

        public var description: String { base.rawValue }
    }

    public var code: Code
    /// Five-character SQLSTATE, when the server sent one.
    public var sqlState: String?
    public var message: String
    public var detail: String?
    public var hint: String?
    /// The statement that failed, shortened; never contains parameter values.
    public var query: String?

    public init(
        code: Code, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil,
        query: String? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.query = query
    }

    /// True when retrying on a new connection may succeed: the connection broke, or the
    /// server is shutting down, starting up or otherwise unavailable (SQLSTATE class 08, 57P).
    public var isConnectionProblem: Bool {
        if code == .connectionFailed || code == .connectionLost { return true }
        guard let sqlState else { return false }
        return sqlState.hasPrefix("08") || sqlState.hasPrefix("57P")
    }

    public var description: String {
        // Words, not the code's name: `connectionFailed` in a message reads like a stack trace.
        var text =
            switch code {
            case .connectionFailed: "cannot connect to the database"
            case .connectionLost: "lost the database connection"
            case .unexpectedResult: "unexpected answer from the database"
            case .schemaNotReady: "the database is not ready for this herald"
            default: "database error"
            }
        if let sqlState { text += " [SQLSTATE \(sqlState)]" }
        text += ": \(message)"
        if let detail { text += "; detail: \(detail)" }
        if let hint { text += "; hint: \(hint)" }
        return text
    }
}
