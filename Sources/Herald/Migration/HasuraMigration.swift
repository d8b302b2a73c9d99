import Foundation
import Logging

/// What `migrate-from-hasura` did (or, with `--dry-run`, would do).
public struct HasuraMigrationReport: Sendable {
    public var install = InstallPlan()
    /// Hasura's capture triggers removed, as `table: trigger`.
    public var droppedHasuraTriggers: [String] = []
    /// Undelivered Hasura events moved into herald.event_log, per trigger.
    public var movedEvents: [String: Int] = [:]
    /// Undelivered Hasura events of triggers this configuration does not name: left to Hasura.
    public var leftInHasura: [String: Int] = [:]
    /// Hasura's pending cron and one-off scheduled events moved.
    public var scheduled = HasuraScheduledMoveReport()

    public var summary: [String] {
        var lines = install.summary
        lines += droppedHasuraTriggers.map { "dropped Hasura trigger \($0)" }
        let moved = movedEvents.values.reduce(0, +)
        lines.append("moved \(moved) undelivered Hasura events into herald.event_log (same ids, same tries)")
        lines += movedEvents.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value)" }
        for (trigger, count) in leftInHasura.sorted(by: { $0.key < $1.key }) {
            lines.append("left \(count) undelivered events of trigger \(trigger) in hdb_catalog.event_log: it is not in this configuration")
        }
        lines += scheduled.summary
        if !droppedHasuraTriggers.isEmpty {
            lines.append(
                "next: remove these event triggers from Hasura's metadata before Hasura reloads it, or Hasura recreates its triggers and every change is captured twice")
        }
        return lines
    }
}

/// Takes over a database Hasura's event triggers served, in one transaction: installs
/// Herald's schema and capture triggers, drops Hasura's `notify_hasura_<trigger>_<OP>`
/// triggers (and their functions) for the configured triggers, and moves Hasura's
/// undelivered events into `herald.event_log` with their tries, keeping Hasura's event UUID
/// as the payload id and `webhook-id`.
///
/// Why nothing is lost or sent twice while the application keeps writing: every configured
/// table is locked against writes first (one LOCK statement, so no deadlock with a
/// transaction that writes several of them), so each committed change was captured either
/// by Hasura before the lock — and is moved — or by Herald after the commit. Moved rows are
/// marked `archived` in Hasura's log, which Hasura's own fetch skips, and an event Hasura is
/// delivering right now (locked less than Hasura's 30-minute lock timeout ago) stops the
/// migration instead of being moved.
public struct HasuraMigration {
    public let config: HeraldConfig
    public let logger: Logger
    /// Where a one-off event's `{from_env: NAME}` webhook is read.
    public let environment: [String: String]

    public init(config: HeraldConfig, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.config = config
        self.logger = logger
        self.environment = environment
    }

    /// Hasura treats a lock older than this as abandoned (its event processor's own rule).
    static let hasuraLockTimeout = "30 minutes"

    /// Runs the migration; with `dryRun` everything is done and then rolled back, so the
    /// report is exact and nothing changes.
    public func run(_ connection: PGConnection, dryRun: Bool) throws -> HasuraMigrationReport {
        try connection.execute(script: "BEGIN")
        do {
            try connection.execute(script: "SET LOCAL lock_timeout = '\(TriggerInstaller.lockTimeout)'")
            let report = try migrate(connection, dryRun: dryRun)
            try connection.execute(script: dryRun ? "ROLLBACK" : "COMMIT")
            return report
        } catch {
            if connection.isOpen { try? connection.execute(script: "ROLLBACK") }
            throw error
        }
    }

    private var capturing: [TriggerConfig] {
        config.triggers.filter { $0.insert != nil || $0.update != nil || $0.delete != nil }
    }

    private func migrate(_ connection: PGConnection, dryRun: Bool) throws -> HasuraMigrationReport {
        let catalog = try connection.query("SELECT to_regclass('hdb_catalog.event_log') IS NOT NULL")
        guard try catalog.decode(Bool.self, row: 0, column: 0) else {
            throw MigrationError(
                code: .noHasuraCatalog,
                message: "this database has no hdb_catalog.event_log: Hasura's event triggers never ran here (use herald install-triggers)")
        }
        try lockTables(connection)
        var report = HasuraMigrationReport()
        report.install = try TriggerInstaller(config: config, logger: logger, pruneOtherTables: false)
            .installInOpenTransaction(connection, changingCitusNodes: !dryRun)
        report.droppedHasuraTriggers = try dropHasuraTriggers(connection)
        let names = PGArray.literal(config.triggers.map(\.name))
        report.movedEvents = try counts(connection.query(Self.moveEventsSQL, [names]))
        let busy = try connection.query(
            """
            SELECT count(*), min(locked)::text FROM hdb_catalog.event_log
            WHERE trigger_name = ANY ($1::text[]) AND NOT delivered AND NOT error AND NOT archived
            """, [names])
        let count = try busy.decode(Int.self, row: 0, column: 0)
        if count > 0 {
            // min(locked) is NULL only if no busy row records when it was locked: "?" says so.
            let since = try busy.decodeIfPresent(String.self, row: 0, column: 1) ?? "?"
            throw MigrationError(
                code: .hasuraStillDelivering,
                message: "\(count) Hasura events of these triggers are being delivered by Hasura right now (locked since \(since)): stop Hasura's event processing, wait for its deliveries to finish, and run again; nothing was changed")
        }
        report.leftInHasura = try counts(
            connection.query(
                """
                SELECT trigger_name, count(*) FROM hdb_catalog.event_log
                WHERE NOT (trigger_name = ANY ($1::text[])) AND NOT delivered AND NOT error AND NOT archived
                GROUP BY trigger_name
                """, [names]))
        report.scheduled = try HasuraScheduledMigration(config: config, environment: environment).run(connection)
        try connection.query("SELECT pg_notify('herald_events', '')")
        return report
    }

    /// Locks every captured table against writes before anything else, in one statement and
    /// a fixed order.
    private func lockTables(_ connection: PGConnection) throws {
        let tables = Set(capturing.map(\.table)).sorted { $0.description < $1.description }
        guard !tables.isEmpty else { return }
        for table in tables {
            let exists = try connection.query("SELECT to_regclass($1) IS NOT NULL", [table.quoted])
            guard try exists.decode(Bool.self, row: 0, column: 0) else {
                let users = capturing.filter { $0.table == table }.map(\.name).joined(separator: ", ")
                throw MigrationError(
                    code: .tableNotFound, message: "table \(table) does not exist (trigger \(users))")
            }
        }
        try connection.execute(
            script: "LOCK TABLE \(tables.map(\.quoted).joined(separator: ", ")) IN SHARE ROW EXCLUSIVE MODE")
    }

    /// Hasura names each capture trigger and its function `notify_hasura_<trigger>_<OP>`.
    private func dropHasuraTriggers(_ connection: PGConnection) throws -> [String] {
        let names = config.triggers.flatMap { trigger in
            ["INSERT", "UPDATE", "DELETE"].map { "notify_hasura_\(trigger.name)_\($0)" }
        }
        let found = try connection.query(
            """
            SELECT n.nspname, c.relname, t.tgname
            FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE t.tgname = ANY ($1::text[]) AND NOT t.tgisinternal
            ORDER BY 1, 2, 3
            """, [PGArray.literal(names)])
        var dropped: [String] = []
        for row in 0..<found.rowCount {
            let table = TableName(
                schema: try found.decode(String.self, row: row, column: 0),
                name: try found.decode(String.self, row: row, column: 1))
            let name = try found.decode(String.self, row: row, column: 2)
            try connection.execute(script: "DROP TRIGGER \(SQLQuoting.identifier(name)) ON \(table.quoted)")
            try connection.execute(
                script: "DROP FUNCTION IF EXISTS hdb_catalog.\(SQLQuoting.identifier(name))()")
            dropped.append("\(table): \(name)")
        }
        return dropped
    }

    /// Moves the undelivered events of the configured triggers: not delivered, not errored,
    /// not archived, and not locked by a Hasura delivery in progress.
    ///
    /// - `archived = true` is how Hasura itself retires events (its fetch skips them), so
    ///   Hasura, if started again, never sends a moved event a second time.
    /// - Hasura's created_at and next_retry_at are timestamps without zone written in the
    ///   writing session's time zone; read back in the server's zone they keep their instant.
    /// - ON CONFLICT: an event imported by an earlier run is not imported twice.
    static let moveEventsSQL = """
        WITH moved AS (
            UPDATE hdb_catalog.event_log SET archived = true
            WHERE trigger_name = ANY ($1::text[]) AND NOT delivered AND NOT error AND NOT archived
              AND (locked IS NULL OR locked < now() - interval '\(hasuraLockTimeout)')
            RETURNING id, schema_name, table_name, trigger_name, payload, tries, created_at, next_retry_at),
        inserted AS (
            INSERT INTO herald.event_log
                (trigger_name, schema_name, table_name, payload, tries, created_at, next_attempt_at, imported_id)
            SELECT trigger_name, schema_name, table_name, payload, tries, coalesce(created_at::timestamptz, now()),
                   greatest(coalesce(next_retry_at::timestamptz, now()), now()), id::uuid
            FROM moved ORDER BY created_at
            ON CONFLICT (imported_id) WHERE imported_id IS NOT NULL DO NOTHING
            RETURNING trigger_name)
        SELECT trigger_name, count(*) FROM inserted GROUP BY trigger_name
        """

    private func counts(_ result: PGResult) throws(PGError) -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in 0..<result.rowCount {
            counts[try result.decode(String.self, row: row, column: 0)] =
                try result.decode(Int.self, row: row, column: 1)
        }
        return counts
    }
}
