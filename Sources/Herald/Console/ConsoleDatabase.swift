import Foundation
import Synchronization

/// The console's way to the database: blocking libpq calls on threads Herald owns (never
/// the cooperative pool), over a few kept-open connections so a page does not pay for a
/// connection setup. At most `connections` calls run at once (``ConsoleGate``), so the
/// console never holds more connections or threads than that, however many requests arrive:
/// the database's connection slots stay free for the worker and the operator's psql.
final class ConsoleDatabase: Sendable {
    /// A connection handed between threads, one at a time, through the idle list.
    private final class Pooled: @unchecked Sendable {
        let connection: PGConnection
        init(_ connection: PGConnection) { self.connection = connection }
    }

    /// Longer than any console page should take; a runaway search becomes an error page
    /// instead of a stuck request.
    static let statementTimeoutSeconds = 10

    private let url: Secret
    private let readOnly: Bool
    private let applicationName: String
    private let idle = Mutex<[Pooled]>([])
    private let gate: ConsoleGate
    private let connections: Int
    private let cache = Mutex<(key: EventIDKey?, keyColumns: [String]?)>((nil, nil))

    /// `applicationName` names the connections in `pg_stat_activity` (the pull consumer API
    /// has a pool of its own, so neither can starve the other).
    init(url: String, readOnly: Bool, connections: Int, applicationName: String = "herald-console") {
        self.applicationName = applicationName
        self.url = Secret(url)
        self.readOnly = readOnly
        self.connections = connections
        gate = ConsoleGate(slots: connections)
    }

    /// Runs `body` with a connection on a thread of its own, once one of the console's slots
    /// is free; throws ``ConsoleGate/Busy`` when none frees up within a short wait.
    func run<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        try await gate.withSlot {
            try await runBlocking("herald-console") { [self] in
                let pooled = try idle.withLock { $0.popLast() } ?? connect()
                let value = try body(pooled.connection)
                // Holding a slot, so at most `connections` exist: every open one is kept.
                if pooled.connection.isOpen {
                    idle.withLock { if $0.count < connections { $0.append(pooled) } }
                }
                return value
            }
        }
    }

    /// An ``EventAdmin`` (the CLI's operations) on a pooled connection, with the
    /// event id key read once per process.
    func admin<T: Sendable>(_ body: @escaping @Sendable (EventAdmin) throws -> T) async throws -> T {
        let known = cache.withLock { $0.key }
        return try await run { [self] connection in
            let admin = try known.map { EventAdmin(connection: connection, key: $0) } ?? EventAdmin(connection: connection)
            cache.withLock { $0.key = admin.key }
            return try body(admin)
        }
    }

    /// Primary-key columns of the configured tables, read once per process.
    func keyColumns(_ tables: [TableName]) async throws -> [String] {
        if let known = cache.withLock({ $0.keyColumns }) { return known }
        let columns = try await admin { try $0.keyColumns(of: tables) }
        cache.withLock { $0.keyColumns = columns }
        return columns
    }

    private func connect() throws -> Pooled {
        let connection = try PGConnection(url: url.value)
        // A read-only console also asks the server to refuse writes, so no code path can
        // write even by mistake.
        try connection.execute(
            script: "SET application_name = '\(applicationName)'; SET statement_timeout = '\(Self.statementTimeoutSeconds)s'"
                + (readOnly ? "; SET default_transaction_read_only = on" : ""))
        return Pooled(connection)
    }
}
