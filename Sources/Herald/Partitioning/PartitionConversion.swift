import Foundation

/// A log table Herald partitions by `created_at`, with every index sql/ gives it. The
/// partitioned table gets each as a partitioned index of the same name, so the claim and
/// the console read the same indexes as on a plain install (a test compares the two).
struct PartitionedTable: Sendable {
    let name: String
    /// Index name and the definition after `ON herald.<name>`, as in sql/001–008.
    let indexes: [(name: String, definition: String)]
    /// Unique indexes without `created_at`: a partitioned table cannot keep them unique (a
    /// unique index must contain the partition key), so the partitioned table gets a plain
    /// index of the same name and definition.
    let demotedUnique: [String]

    var qualified: String { "herald.\(name)" }
    var legacy: String { PartitionLayout.legacyName(table: name) }
    var defaultPartition: String { PartitionLayout.defaultName(table: name) }
    /// Written while converting: old rows stay below the cutover, which lets ATTACH skip
    /// its scan.
    var boundConstraint: String { "\(name)_before_partitioning" }
    /// The (id, created_at) unique index built concurrently before the swap; it becomes the
    /// legacy partition's primary key.
    var newKeyIndex: String { "\(name)_id_created_at" }
    /// Row triggers of Herald's own on the table, each with the statement that creates it on
    /// `herald.<name>`: the swap drops them from the old table and creates them on the
    /// partitioned one, which clones them onto every partition, the legacy one included.
    var ownTriggers: [(name: String, create: String)] = []

    /// `event_log_failed` → `event_log_legacy_failed`.
    func legacyIndexName(_ index: String) -> String { legacy + index.dropFirst(name.count) }
    func plainIndexName(_ index: String) -> String { "\(index)_plain" }

    static let eventLog = PartitionedTable(
        name: "event_log",
        indexes: [
            ("event_log_pending_trigger_due", "(trigger_name, next_attempt_at) WHERE status = 'pending' AND ordering_key IS NULL"),
            (
                "event_log_pending_key_heads",
                "(trigger_name, ordering_key, (coalesce(ordering_position, id))) WHERE status = 'pending' AND ordering_key IS NOT NULL"
            ),
            ("event_log_blocked", "(trigger_name, blocked_at) WHERE blocked_at IS NOT NULL AND status = 'pending'"),
            ("event_log_failed", "(id) INCLUDE (trigger_name) WHERE status = 'failed'"),
            ("event_log_finished", "(finished_at) WHERE status <> 'pending'"),
            ("event_log_payload", "USING gin (payload jsonb_path_ops) WITH (gin_pending_list_limit = 64) WHERE status <> 'pending'"),
            ("event_log_imported_id", "(imported_id) WHERE imported_id IS NOT NULL"),
            ("event_log_stream", "(trigger_name, xid, id) WHERE xid IS NOT NULL"),
        ],
        demotedUnique: ["event_log_imported_id"],
        ownTriggers: [("herald_wake", "SELECT herald.add_wake_trigger()")])  // sql/017

    static let invocationLog = PartitionedTable(
        name: "invocation_log",
        indexes: [
            ("invocation_log_event", "(event_id)"),
            ("invocation_log_recent", "(created_at)"),
            ("invocation_log_errors", "(trigger_name, id) WHERE error_class IS NOT NULL"),
            ("invocation_log_batch", "(batch_id) WHERE batch_id IS NOT NULL AND request_headers <> '{}'::jsonb"),
        ],
        demotedUnique: [])

    static let all = [eventLog, invocationLog]
}

/// Converts `herald.event_log` and `herald.invocation_log` to native range partitioning by
/// `created_at` without copying a row and with one short exclusive lock:
///
/// 1. Outside any transaction, while capture and delivery go on: a NOT VALID check that
///    every row is older than the cutover (a range boundary a few minutes ahead), then
///    VALIDATE (no write lock), and the (id, created_at) unique index built CONCURRENTLY.
/// 2. One transaction (`lock_timeout` 10 s): lock both tables, refuse if the clock came
///    within 5 s of the cutover, drop invocation_log's foreign key, make (id, created_at)
///    the old table's primary key from the ready index, rename the old table and its
///    indexes to `*_legacy`, create the partitioned table under the old name with the same
///    columns, identity, checks and indexes, ATTACH the old table as the partition below the
///    cutover (its indexes are adopted and the check spares the scan), carry the id sequence
///    on, and add the DEFAULT partition. Only catalog work runs under the lock.
/// 3. ``PartitionMaintainer`` premakes the ranges from the cutover on.
///
/// Rows never move, so no event is lost or delivered again: a lease taken before the swap
/// is recorded against the same row after it.
public struct PartitionConversion {
    public struct Report: Sendable {
        /// The legacy partition's upper bound (unix seconds).
        public var cutover: Int
        /// How long the swap held its exclusive locks.
        public var lockMilliseconds: Double
    }

    public let layout: PartitionLayout

    public init(layout: PartitionLayout) {
        self.layout = layout
    }

    /// Whether `herald.event_log` is already partitioned.
    public static func isPartitioned(_ connection: PGConnection) throws(PGError) -> Bool {
        try connection.query(
            "SELECT coalesce((SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass('herald.event_log')), false)"
        ).decode(Bool.self, row: 0, column: 0)
    }

    /// Step 1, one entry per transaction (a single statement runs on its own: CONCURRENTLY
    /// cannot run in a transaction).
    func prepareSteps(cutover: Int) -> [[String]] {
        let bound = SQLQuoting.literal(PartitionLayout.timestampText(cutover))
        var steps: [[String]] = []
        for table in PartitionedTable.all {
            steps.append([
                "SET LOCAL lock_timeout = '2s'",
                "ALTER TABLE \(table.qualified) DROP CONSTRAINT IF EXISTS \(table.boundConstraint)",
                "ALTER TABLE \(table.qualified) ADD CONSTRAINT \(table.boundConstraint) CHECK (created_at < \(bound)) NOT VALID",
            ])
            steps.append(["ALTER TABLE \(table.qualified) VALIDATE CONSTRAINT \(table.boundConstraint)"])
            steps.append([
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \(table.newKeyIndex) ON \(table.qualified) (id, created_at)"
            ])
            for index in table.demotedUnique {
                let definition = table.indexes.first { $0.name == index }?.definition ?? ""
                steps.append([
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS \(table.plainIndexName(index)) ON \(table.qualified) \(definition)"
                ])
            }
        }
        return steps
    }

    /// Runs one step of ``prepareSteps(cutover:)``.
    private func execute(_ step: [String], _ connection: PGConnection) throws {
        guard step.count > 1 else {
            try connection.execute(script: step[0])
            return
        }
        try connection.transaction {
            for statement in step { try connection.execute(script: statement) }
        }
    }

    /// Step 2's statements, run in one transaction.
    func swapStatements(cutover: Int) -> [String] {
        let bound = SQLQuoting.literal(PartitionLayout.timestampText(cutover))
        var statements = [
            "SET LOCAL lock_timeout = '10s'",
            "LOCK TABLE \(PartitionedTable.all.map(\.qualified).joined(separator: ", ")) IN ACCESS EXCLUSIVE MODE",
            // A write after the cutover would fail the check: never let the clock get there.
            """
            DO $$ BEGIN IF clock_timestamp() > \(bound)::timestamptz - interval '5 seconds' THEN
                RAISE EXCEPTION 'the partition conversion reached its cutover before the swap' USING ERRCODE = 'HR001';
            END IF; END $$
            """,
            "ALTER TABLE herald.invocation_log DROP CONSTRAINT IF EXISTS invocation_log_event_id_fkey",
        ]
        for table in PartitionedTable.all {
            statements += [
                "ALTER TABLE \(table.qualified) DROP CONSTRAINT \(table.name)_pkey",
                "ALTER TABLE \(table.qualified) ADD CONSTRAINT \(table.legacy)_pkey PRIMARY KEY USING INDEX \(table.newKeyIndex)",
            ]
            for index in table.demotedUnique {
                statements += [
                    "DROP INDEX herald.\(index)", "ALTER INDEX herald.\(table.plainIndexName(index)) RENAME TO \(index)",
                ]
            }
            statements += table.indexes.map { "ALTER INDEX herald.\($0.name) RENAME TO \(table.legacyIndexName($0.name))" }
            statements += table.ownTriggers.map { "DROP TRIGGER \($0.name) ON \(table.qualified)" }
            statements += [
                "ALTER TABLE \(table.qualified) RENAME TO \(table.legacy)",
                """
                CREATE TABLE \(table.qualified) (LIKE herald.\(table.legacy) INCLUDING DEFAULTS INCLUDING IDENTITY \
                INCLUDING CONSTRAINTS INCLUDING COMMENTS) PARTITION BY RANGE (created_at)
                """,
                "ALTER TABLE \(table.qualified) DROP CONSTRAINT \(table.boundConstraint)",
                "ALTER TABLE \(table.qualified) ADD CONSTRAINT \(table.name)_pkey PRIMARY KEY (id, created_at)",
            ]
            statements += table.indexes.map { "CREATE INDEX \($0.name) ON \(table.qualified) \($0.definition)" }
            statements += table.ownTriggers.map(\.create)
            statements += [
                "ALTER TABLE \(table.qualified) ATTACH PARTITION herald.\(table.legacy) FOR VALUES FROM (MINVALUE) TO (\(bound))",
                // The new identity continues after every id the old one handed out.
                """
                SELECT setval(pg_get_serial_sequence('\(table.qualified)', 'id'), \
                nextval(pg_get_serial_sequence('herald.\(table.legacy)', 'id')))
                """,
                "CREATE TABLE herald.\(table.defaultPartition) PARTITION OF \(table.qualified) DEFAULT",
            ]
        }
        return statements
    }

    /// The whole conversion as SQL text, for `--dry-run`.
    public func script(now: Int = Int(Date().timeIntervalSince1970)) -> String {
        let cutover = layout.cutover(now: now)
        var parts = ["-- partition herald.event_log and herald.invocation_log by created_at (cutover \(PartitionLayout.timestampText(cutover)))"]
        for step in prepareSteps(cutover: cutover) {
            let statements = step.map { $0 + ";" }
            parts += step.count > 1 ? ["BEGIN;"] + statements + ["COMMIT;"] : statements
        }
        parts += ["BEGIN;"] + swapStatements(cutover: cutover).map { $0 + ";" } + ["COMMIT;"]
        parts.append("-- then the ranges from the cutover on are created as herald maintain does")
        return parts.joined(separator: "\n")
    }

    /// Converts the log; nil when it is partitioned already. A swap that would come too
    /// close to the cutover (a slow index build) is retried with a later one.
    public func run(_ connection: PGConnection) throws -> Report? {
        guard try !Self.isPartitioned(connection) else { return nil }
        var attempt = 0
        while true {
            attempt += 1
            let cutover = layout.cutover(now: Int(Date().timeIntervalSince1970))
            try dropInvalidLeftovers(connection)
            for step in prepareSteps(cutover: cutover) {
                try execute(step, connection)
            }
            do {
                let started = ContinuousClock.now
                try connection.transaction {
                    for statement in swapStatements(cutover: cutover) {
                        try connection.execute(script: statement)
                    }
                }
                return Report(cutover: cutover, lockMilliseconds: (ContinuousClock.now - started).seconds * 1000)
            } catch let error as PGError where error.sqlState == "HR001" && attempt < 3 {
                continue
            }
        }
    }

    /// A CONCURRENTLY build that failed part way leaves an invalid index behind, which IF
    /// NOT EXISTS would keep: drop it so the next build starts clean.
    private func dropInvalidLeftovers(_ connection: PGConnection) throws {
        let names = PartitionedTable.all.flatMap { table in [table.newKeyIndex] + table.demotedUnique.map(table.plainIndexName) }
        let invalid = try connection.query(
            """
            SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'herald' AND c.relname = ANY ($1::text[]) AND NOT i.indisvalid
            """, [PGArray.literal(names)])
        for name in invalid.column(0).compactMap({ $0 }) {
            try connection.execute(script: "DROP INDEX CONCURRENTLY herald.\(name)")
        }
    }
}

extension PartitionConversion {
    /// What `install-triggers` does after the schema and triggers with `partitioning:`
    /// configured: converts the log if it is not partitioned yet, then creates the ranges
    /// ahead (never drops: retention is maintenance's job). Returns one line per change,
    /// none when everything was in place.
    public static func install(_ settings: PartitioningSettings, _ connection: PGConnection) throws -> [String] {
        var lines: [String] = []
        if let report = try PartitionConversion(layout: settings.layout).run(connection) {
            lines.append(
                "partitioned herald.event_log and herald.invocation_log by created_at: rows before \(PartitionLayout.timestampText(report.cutover)) are in the *_legacy partitions; exclusive lock held \(String(format: "%.1f", report.lockMilliseconds)) ms")
        }
        let maintenance = try PartitionMaintainer(connection: connection, layout: settings.layout, retention: RetentionSettings())
            .run()
        return lines + maintenance.lines
    }
}
