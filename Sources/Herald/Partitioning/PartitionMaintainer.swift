import Foundation

/// What `herald maintain` and the worker's periodic pass do on a partitioned log: create the
/// ranges ahead, empty the DEFAULT partition into proper ones, and drop partitions whose
/// every row retention lets go.
public struct PartitionMaintainer {
    public struct Report: Sendable, Equatable {
        /// Partitions created (both logs).
        public var created: [String] = []
        /// Event rows found in the DEFAULT partition at the start of the pass (a burst past
        /// the premade ranges, or ranges never made while nothing ran maintenance).
        public var defaultRowsFound = 0
        /// Event rows moved out of DEFAULT into the partitions created for them.
        public var movedFromDefault = 0
        /// Event rows still in DEFAULT after the pass (no range could be made for them).
        public var defaultRowsLeft = 0
        /// Partitions dropped by retention (both logs).
        public var dropped: [String] = []
        /// Event-log partitions past the retention horizon kept because a row in them must
        /// stay: pending (leased, blocked) events, or finished ones retention keeps.
        public var heldBack: [String] = []
        /// The longest any step held a lock that blocks capture or delivery.
        public var longestLockMilliseconds = 0.0

        public var lines: [String] {
            var lines = created.map { "created partition herald.\($0)" }
            if defaultRowsFound > 0 {
                lines.append(
                    "the DEFAULT partition held \(defaultRowsFound) events; moved \(movedFromDefault) into new partitions, \(defaultRowsLeft) left")
            }
            lines += dropped.map { "dropped partition herald.\($0)" }
            lines += heldBack.map { "kept partition herald.\($0) past retention: it holds events that must stay" }
            return lines
        }
    }

    public let connection: PGConnection
    public let layout: PartitionLayout
    public let retention: RetentionSettings

    public init(connection: PGConnection, layout: PartitionLayout, retention: RetentionSettings) {
        self.connection = connection
        self.layout = layout
        self.retention = retention
    }

    /// Waits for locks that block capture at most this long; a pass that cannot get one
    /// leaves that step to the next pass rather than queueing the application's writes.
    static let lockTimeout = "2s"

    /// One pass. `now` in unix seconds (tests move it).
    public func run(now: Int = Int(Date().timeIntervalSince1970)) throws -> Report {
        guard try PartitionConversion.isPartitioned(connection) else {
            throw PGError(
                code: .unexpectedResult,
                message: "herald.event_log is not partitioned: run herald install-triggers with partitioning: configured")
        }
        var report = Report()
        report.defaultRowsFound = try defaultRows(.eventLog)
        for table in PartitionedTable.all {
            try premake(table, now: now, report: &report)
        }
        report.defaultRowsLeft = try defaultRows(.eventLog)
        if retention.isEnabled { try dropExpired(now: now, report: &report) }
        return report
    }

    // MARK: Creating ranges

    /// The partitions of one log, from the catalog.
    func partitions(_ table: PartitionedTable) throws(PGError) -> [PartitionBounds] {
        let result = try connection.query(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT',
                   extract(epoch FROM (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz)::bigint,
                   extract(epoch FROM (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz)::bigint
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = $1::regclass
            """, [table.qualified])
        // DEFAULT has no range: its bounds are NULL.
        return try result.rows { row throws(PGError) in
            PartitionBounds(
                name: try result.decode(String.self, row: row, column: 0),
                lower: try result.decodeIfPresent(Int.self, row: row, column: 2),
                upper: try result.decodeIfPresent(Int.self, row: row, column: 3),
                isDefault: try result.decode(Bool.self, row: row, column: 1))
        }
    }

    private func defaultRows(_ table: PartitionedTable) throws(PGError) -> Int {
        try connection.query("SELECT count(*) FROM herald.\(table.defaultPartition)")
            .decode(Int.self, row: 0, column: 0)
    }

    /// Creates the current range, the `premake` after it and the ranges of rows waiting in
    /// DEFAULT, where no partition covers them yet.
    private func premake(_ table: PartitionedTable, now: Int, report: inout Report) throws {
        let starts = try connection.query(
            """
            SELECT DISTINCT (floor(extract(epoch FROM created_at) / $1::bigint) * $1::bigint)::bigint
            FROM herald.\(table.defaultPartition)
            """, [String(layout.intervalSeconds)])
        let waiting = try starts.rows { row throws(PGError) in try starts.decode(Int.self, row: row, column: 0) }
        let missing = layout.missing(layout.premadeStarts(now: now) + waiting, existing: try partitions(table))
        for start in missing {
            let moved = try create(table, start: start, movingFromDefault: waiting.contains(start), report: &report)
            if table.name == PartitionedTable.eventLog.name { report.movedFromDefault += moved }
        }
    }

    /// Creates one range. PostgreSQL refuses a partition for a range DEFAULT holds rows of,
    /// so those rows move in the same transaction: a new table, filled from DEFAULT, then
    /// attached. Inserts into DEFAULT (only rows outside every range) wait meanwhile; all
    /// others go on. Returns the rows moved.
    private func create(_ table: PartitionedTable, start: Int, movingFromDefault: Bool, report: inout Report) throws -> Int {
        let name = PartitionLayout.partitionName(table: table.name, start: start)
        let range =
            "FROM (\(SQLQuoting.literal(PartitionLayout.timestampText(start)))) TO (\(SQLQuoting.literal(PartitionLayout.timestampText(start + layout.intervalSeconds))))"
        let started = ContinuousClock.now
        let moved = try connection.transaction {
            try connection.execute(script: "SET LOCAL lock_timeout = '\(Self.lockTimeout)'")
            guard movingFromDefault else {
                try connection.execute(script: "CREATE TABLE herald.\(name) PARTITION OF \(table.qualified) FOR VALUES \(range)")
                try Self.tunePayloadIndexes(connection)
                return 0
            }
            try connection.execute(
                script: """
                    LOCK TABLE \(table.qualified) IN SHARE UPDATE EXCLUSIVE MODE;
                    LOCK TABLE herald.\(table.defaultPartition) IN EXCLUSIVE MODE;
                    CREATE TABLE herald.\(name) (LIKE \(table.qualified) INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
                    """)
            let bounds = [PartitionLayout.timestampText(start), PartitionLayout.timestampText(start + layout.intervalSeconds)]
            let moved = try connection.query(
                """
                WITH moved AS (DELETE FROM herald.\(table.defaultPartition)
                               WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz RETURNING *)
                INSERT INTO herald.\(name) SELECT * FROM moved
                """, bounds
            ).affectedRows
            try connection.execute(script: "ALTER TABLE \(table.qualified) ATTACH PARTITION herald.\(name) FOR VALUES \(range)")
            try Self.tunePayloadIndexes(connection)
            return moved
        }
        report.longestLockMilliseconds = max(report.longestLockMilliseconds, (ContinuousClock.now - started).seconds * 1000)
        report.created.append(name)
        return moved
    }

    /// A new partition's payload index gets the short GIN pending list (schema version 13):
    /// a partitioned index cannot carry it for its partitions once made.
    private static func tunePayloadIndexes(_ connection: PGConnection) throws {
        try connection.execute(script: "SELECT herald.tune_payload_indexes()")
    }

    // MARK: Retention

    /// Drops every event-log partition wholly past the retention horizon whose rows are all
    /// finished and due for deletion, with the invocation-log partition of the same range.
    ///
    /// PostgreSQL refuses `DETACH PARTITION … CONCURRENTLY` while a DEFAULT partition exists,
    /// and DEFAULT is what keeps a burst past the premade ranges from failing capture. So the
    /// detach is the plain one, in a transaction that takes both logs' exclusive locks
    /// (`lock_timeout` 2 s; a pass that cannot get them tries again next time), checks the
    /// partition again under them (a redelivery may have made a row pending), detaches and
    /// drops: catalog work and a file unlink, no row is read or deleted.
    private func dropExpired(now: Int, report: inout Report) throws {
        let kept = [retention.deliveredAfterSeconds, retention.failedAfterSeconds].compactMap { $0 }
        guard let shortest = kept.min() else { return }
        let eventPartitions = try partitions(.eventLog)
        let invocationNames = Set(try partitions(.invocationLog).map(\.name))
        for partition in PartitionLayout.pastHorizon(eventPartitions, horizon: now - shortest) {
            guard try mayDrop(partition.name, now: now) else {
                report.heldBack.append(partition.name)
                continue
            }
            let sibling = PartitionLayout.sibling(of: partition.name, table: PartitionedTable.invocationLog.name)
                .flatMap { invocationNames.contains($0) ? $0 : nil }
            let started = ContinuousClock.now
            let dropped: Bool
            do {
                dropped = try connection.transaction {
                    // The partitions first: waiting for them (an autovacuum is cancelled after
                    // deadlock_timeout) stalls claims, never capture, which only writes new
                    // ranges; the parents' locks, which stall capture, then come at once.
                    let doomed = ([partition.name] + (sibling.map { [$0] } ?? [])).map { "herald.\($0)" }
                    try connection.execute(
                        script: """
                            SET LOCAL lock_timeout = '\(Self.lockTimeout)';
                            LOCK TABLE \(doomed.joined(separator: ", ")) IN ACCESS EXCLUSIVE MODE;
                            LOCK TABLE herald.event_log, herald.invocation_log IN ACCESS EXCLUSIVE MODE
                            """)
                    guard try mayDrop(partition.name, now: now) else { return false }
                    // Streams learn what goes with the partition (a dropped table fires no
                    // delete): the newest transaction per trigger, from its stream index.
                    try connection.execute(script: StreamHorizon.recordSQL(from: "herald.\(partition.name)"))
                    try connection.execute(script: "ALTER TABLE herald.event_log DETACH PARTITION herald.\(partition.name)")
                    try connection.execute(script: "DROP TABLE herald.\(partition.name)")
                    if let sibling {
                        try connection.execute(script: "ALTER TABLE herald.invocation_log DETACH PARTITION herald.\(sibling)")
                        try connection.execute(script: "DROP TABLE herald.\(sibling)")
                    }
                    return true
                }
            } catch let error as PGError where error.sqlState == "55P03" {
                continue  // lock_timeout: the next pass tries again
            }
            report.longestLockMilliseconds = max(report.longestLockMilliseconds, (ContinuousClock.now - started).seconds * 1000)
            if dropped {
                report.dropped += [partition.name] + (sibling.map { [$0] } ?? [])
            } else {
                report.heldBack.append(partition.name)
            }
        }
    }

    /// Whether every row of an event-log partition is one retention deletes: none pending
    /// (so none leased or blocked either), delivered ones finished more than
    /// `delivered_after` ago, failed ones more than `failed_after` ago, and a status without
    /// a setting is kept. Each test is one probe of a partial index.
    private func mayDrop(_ partition: String, now: Int) throws(PGError) -> Bool {
        func kept(_ status: String, _ seconds: Int?) -> String {
            let recent = seconds.map { " AND finished_at >= to_timestamp(\(now - $0))" } ?? ""
            return "NOT EXISTS (SELECT FROM herald.\(partition) WHERE status = '\(status)'\(recent))"
        }
        let sql = """
            SELECT NOT EXISTS (SELECT FROM herald.\(partition) WHERE status = 'pending')
               AND \(kept("delivered", retention.deliveredAfterSeconds)) AND \(kept("failed", retention.failedAfterSeconds))
            """
        return try connection.query(sql).decode(Bool.self, row: 0, column: 0)
    }
}
