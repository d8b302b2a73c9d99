import CLibPQ
import Foundation

/// A notification received on a channel this connection LISTENs to.
public struct PGNotification: Sendable, Equatable {
    public var channel: String
    public var payload: String
    public var senderPID: Int32
}

/// One libpq connection. It owns its `PGconn` and frees it in `deinit`.
///
/// Every call blocks the calling thread until the server answers, so a connection belongs
/// to one thread that Herald owns (``DatabaseThread``) or to a command-line command's main
/// thread; it is never used from Swift's cooperative pool. Not `Sendable` on purpose.
public final class PGConnection {
    private let handle: OpaquePointer
    /// Names of the ``PGStatement``s prepared on this session so far.
    private var prepared: Set<String> = []

    /// Defaults every connection gets unless the URL sets them: a server that does not
    /// answer fails the attempt after `connect_timeout` seconds instead of hanging the
    /// thread, and TCP keepalives notice a peer that vanished (failover, cable) within
    /// about 25 s instead of the kernel's two hours.
    static let connectionDefaults: [(String, String)] = [
        ("connect_timeout", "10"), ("keepalives", "1"), ("keepalives_idle", "10"), ("keepalives_interval", "5"),
        ("keepalives_count", "3"),
    ]

    /// Opens a connection. `url` is any libpq connection string or `postgres://` URI; what it
    /// sets wins over ``connectionDefaults``.
    public init(url: String) throws(PGError) {
        // expand_dbname: the "dbname" value is parsed as a whole connection string or URI,
        // and its settings override the keywords before it.
        let pairs = Self.connectionDefaults + [("dbname", url)]
        let connected: OpaquePointer? = withCStringArray(pairs.map { $0.0 }) { keywords in
            withCStringArray(pairs.map { $0.1 }) { values in
                PQconnectdbParams(keywords + [nil], values + [nil], 1)
            }
        }
        guard let handle = connected else {
            throw PGError(code: .connectionFailed, message: "libpq could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            // libpq splits its message over lines ("…failed: Connection refused\n\tIs the
            // server running…"): one line reads better in a log and before what follows it.
            let message = (Self.trimmed(PQerrorMessage(handle)) ?? "unknown error").replacing(/\s*\n\s*/, with: "; ")
            PQfinish(handle)
            // libpq quotes what it could not parse, which may be the password.
            throw PGError(code: .connectionFailed, message: Redaction.connectionMessage(message, url: url))
        }
        // Server notices ("relation already exists, skipping") would go straight to stderr
        // through libpq's default processor; Herald reports what matters itself.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        self.handle = handle
    }

    deinit {
        PQfinish(handle)
    }

    /// False once the server closed the connection or it broke.
    public var isOpen: Bool { PQstatus(handle) == CONNECTION_OK }

    /// The server's version as an integer, e.g. 150018.
    public var serverVersion: Int { Int(PQserverVersion(handle)) }

    /// The backend process id, for `pg_terminate_backend` and notification filtering.
    public var backendPID: Int32 { PQbackendPID(handle) }

    /// Whether a transaction block is open (a failed statement there aborts the block, so
    /// a check that may fail runs under a savepoint).
    public var inTransaction: Bool { PQtransactionStatus(handle) != PQTRANS_IDLE }

    /// The socket descriptor, for waiting on notifications with `poll`.
    public var socket: Int32 { PQsocket(handle) }

    /// Runs one statement with bound parameters (`$1`, `$2`, …, all sent as text and cast by
    /// the server) and returns its result. Values are never spliced into SQL text.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = [], resultFormat: PGResult.Format = .text)
        throws(PGError) -> PGResult
    {
        let result = withCStringArray(parameters) { values in
            PQexecParams(
                handle, sql, Int32(parameters.count), nil, values, nil, nil,
                resultFormat == .binary ? 1 : 0)
        }
        return try check(result, sql: sql)
    }

    /// Runs a statement the worker runs over and over, prepared on this session the first
    /// time and executed by name afterwards: the server parses and analyses it once per
    /// session instead of once per call, and after a few executions may keep one generic
    /// plan. A prepared statement lives as long as the session, whatever the transactions
    /// around it do, and PostgreSQL replans it by itself when the tables it reads change
    /// (a partition attached, an index built). A new connection starts with none prepared.
    @discardableResult
    public func query(_ statement: PGStatement, _ parameters: [String?] = [], resultFormat: PGResult.Format = .text)
        throws(PGError) -> PGResult
    {
        if !prepared.contains(statement.name) {
            try check(PQprepare(handle, statement.name, statement.sql, 0, nil), sql: statement.sql)
            prepared.insert(statement.name)
        }
        let result = withCStringArray(parameters) { values in
            PQexecPrepared(
                handle, statement.name, Int32(parameters.count), values, nil, nil, resultFormat == .binary ? 1 : 0)
        }
        return try check(result, sql: statement.sql)
    }

    /// Runs a script of one or more statements with no parameters (DDL, migrations).
    public func execute(script sql: String) throws(PGError) {
        try check(PQexec(handle, sql), sql: sql)
    }

    /// Runs `body` inside BEGIN/COMMIT, rolling back if it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute(script: "BEGIN")
        do {
            let value = try body()
            try execute(script: "COMMIT")
            return value
        } catch {
            if isOpen { try? execute(script: "ROLLBACK") }
            throw error
        }
    }

    /// Subscribes to a notification channel.
    public func listen(_ channel: String) throws(PGError) {
        try execute(script: "LISTEN \(SQLQuoting.identifier(channel))")
    }

    /// Reads whatever the server has sent and returns the notifications received so far,
    /// without blocking.
    public func drainNotifications() throws(PGError) -> [PGNotification] {
        guard PQconsumeInput(handle) == 1 else {
            throw PGError(code: .connectionLost, message: Self.trimmed(PQerrorMessage(handle)) ?? "connection lost")
        }
        var received: [PGNotification] = []
        while let notify = PQnotifies(handle) {
            received.append(
                PGNotification(
                    channel: String(cString: notify.pointee.relname),
                    payload: String(cString: notify.pointee.extra),
                    senderPID: notify.pointee.be_pid))
            PQfreemem(notify)
        }
        return received
    }

    /// Blocks up to `timeoutMilliseconds` for a notification (or until `wakeFD` becomes
    /// readable, when given) and returns what arrived; an empty array means timeout or wake-up.
    public func waitForNotifications(timeoutMilliseconds: Int32, wakeFD: Int32? = nil) throws(PGError)
        -> [PGNotification]
    {
        let pending = try drainNotifications()
        if !pending.isEmpty { return pending }
        var fds = [pollfd(fd: socket, events: Int16(POLLIN), revents: 0)]
        if let wakeFD { fds.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)) }
        let ready = poll(&fds, nfds_t(fds.count), timeoutMilliseconds)
        if ready < 0 && errno != EINTR {
            throw PGError(code: .connectionLost, message: "poll failed: \(String(cString: strerror(errno)))")
        }
        return try drainNotifications()
    }

    @discardableResult
    private func check(_ result: OpaquePointer?, sql: String) throws(PGError) -> PGResult {
        guard let result else {
            throw PGError(
                code: isOpen ? .queryFailed : .connectionLost,
                message: Self.trimmed(PQerrorMessage(handle)) ?? "no result", query: Self.shortened(sql))
        }
        let wrapped = PGResult(result)
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return wrapped
        default:
            let sqlState = wrapped.errorField(UInt8(ascii: "C"))
            let lost = !isOpen || (sqlState == nil && PQstatus(handle) != CONNECTION_OK)
            throw PGError(
                code: lost ? .connectionLost : .queryFailed,
                message: wrapped.errorField(UInt8(ascii: "M"))
                    ?? Self.trimmed(PQerrorMessage(handle)) ?? "query failed",
                sqlState: sqlState,
                detail: wrapped.errorField(UInt8(ascii: "D")),
                hint: wrapped.errorField(UInt8(ascii: "H")),
                query: Self.shortened(sql))
        }
    }

    static func trimmed(_ message: UnsafePointer<CChar>?) -> String? {
        guard let message else { return nil }
        let text = String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    private static func shortened(_ sql: String) -> String {
        let flat = sql.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return flat.count > 200 ? String(flat.prefix(200)) + "…" : flat
    }
}

/// A statement the worker runs over and over (see `PGConnection.query(_ statement:…)`):
/// prepared once per session under `name`, which must be unique among the statements a
/// session prepares.
public struct PGStatement: Sendable {
    public let name: String
    public let sql: String

    public init(name: String, sql: String) {
        self.name = name
        self.sql = sql
    }
}

/// Calls `body` with a C array of NUL-terminated copies of `strings` (NULL for nil), freed
/// afterwards.
private func withCStringArray<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.flatMap { strdup($0) } }
    defer { copies.forEach { free($0) } }
    return body(copies.map { $0.map { UnsafePointer($0) } })
}
