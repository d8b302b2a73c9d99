import Foundation
import Logging

/// What `herald backfill` was asked for.
public struct BackfillOptions: Sendable, Equatable {
    /// A SQL condition over the table's columns limiting which rows are backfilled.
    public var whereClause: String?
    public var batchSize = 1000
    /// Rows per second at most; nil: as fast as the database allows.
    public var rowsPerSecond: Double?
    /// Whether the trigger's `filter:` (its insert expression) also selects the rows.
    public var applyFilter = true
    /// Start a new run even though one with the same condition finished before.
    public var restart = false

    public init(
        whereClause: String? = nil, batchSize: Int = 1000, rowsPerSecond: Double? = nil, applyFilter: Bool = true,
        restart: Bool = false
    ) {
        self.whereClause = whereClause
        self.batchSize = batchSize
        self.rowsPerSecond = rowsPerSecond
        self.applyFilter = applyFilter
        self.restart = restart
    }

    /// Rows per batch: with a rate, a batch is at most a second's worth, so the pace is even.
    var effectiveBatchSize: Int {
        guard let rowsPerSecond else { return batchSize }
        return max(1, min(batchSize, Int(rowsPerSecond.rounded(.down))))
    }
}

/// Why a backfill cannot run; the message names the trigger or table and the fix.
public struct BackfillError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public static let notATableTrigger = Code("not_a_table_trigger")
        public static let noPrimaryKey = Code("no_primary_key")
        public static let schemaMissing = Code("schema_missing")
        public static let alreadyFinished = Code("already_finished")
        public static let invalidCondition = Code("invalid_condition")
        public var description: String { name }
    }

    public var code: Code
    public var message: String
    public var description: String { message }
}

/// One backfill run as stored in `herald.backfills`.
public struct BackfillRun: Sendable, Equatable {
    public var id: Int64
    public var keyColumns: [String]
    /// The key of the last row backfilled, as text; nil before the first batch.
    public var lastKey: [String]?
    public var rowsDone: Int64
    /// Whether this run continues one an earlier process started.
    public var resumed: Bool
    public var finished = false
}

/// Creates a MANUAL event per existing row of a trigger's table, in primary-key order, in
/// batches that each commit their events together with the key of their last row.
///
/// Rows are read with a plain `SELECT` (no row locks), one index range per batch, so writers
/// on the table never wait for a backfill. Events get ids after every event captured so far,
/// so an ordered trigger's backfilled events of a key queue behind that key's pending ones.
public struct Backfill {
    public let trigger: TriggerConfig
    public let options: BackfillOptions
    let connection: PGConnection
    let logger: Logger

    public init(trigger: TriggerConfig, options: BackfillOptions, connection: PGConnection, logger: Logger) {
        self.trigger = trigger
        self.options = options
        self.connection = connection
        self.logger = logger
    }

    /// Identifies a run: the same trigger and condition resume the same unfinished run.
    var condition: String {
        var parts: [String] = []
        if let whereClause = options.whereClause { parts.append("where: \(whereClause)") }
        if let filter = appliedFilter { parts.append("filter: \(filter.source)") }
        return parts.joined(separator: "\n")
    }

    /// The trigger's insert filter when it applies: a backfilled row is treated as inserted.
    var appliedFilter: RowFilterExpression? {
        options.applyFilter ? trigger.filter?.expressions[.insert] : nil
    }

    /// Finds the unfinished run with this trigger and condition, or starts one.
    public func start() throws -> BackfillRun {
        guard trigger.schedule == nil else {
            throw BackfillError(
                code: .notATableTrigger,
                message: "trigger \(trigger.name) is a scheduled trigger; backfill creates events from a table's rows")
        }
        let exists = try connection.query("SELECT to_regclass('herald.backfills') IS NOT NULL")
        guard try exists.decode(Bool.self, row: 0, column: 0) else {
            throw BackfillError(
                code: .schemaMissing,
                message: "the database has no herald.backfills table; run `herald install-triggers` first")
        }
        let keyColumns = try TriggerInstaller.primaryKey(of: trigger.table, connection)
        guard !keyColumns.isEmpty else {
            throw BackfillError(
                code: .noPrimaryKey,
                message:
                    "table \(trigger.table) has no primary key; backfill walks the table in key order so that an interrupted run can resume (add a primary key)"
            )
        }
        try checkCondition()

        let found = try connection.query(
            """
            SELECT id, array_to_json(last_key)::text, rows_done, finished_at IS NOT NULL, finished_at::text FROM herald.backfills
            WHERE trigger_name = $1 AND condition = $2
            ORDER BY finished_at IS NULL DESC, id DESC LIMIT 1
            """, [trigger.name, condition])
        if found.rowCount == 1 {
            let rowsDone = try found.decode(Int64.self, row: 0, column: 2)
            if !(try found.decode(Bool.self, row: 0, column: 3)) {
                return BackfillRun(
                    id: try found.decode(Int64.self, row: 0, column: 0), keyColumns: keyColumns,
                    lastKey: try found.decodeIfPresent(String.self, row: 0, column: 1).flatMap(Self.decodeKey),
                    rowsDone: rowsDone, resumed: true)
            }
            guard options.restart else {
                let finishedAt = try found.decode(String.self, row: 0, column: 4)
                throw BackfillError(
                    code: .alreadyFinished,
                    message:
                        "this backfill of trigger \(trigger.name) finished at \(finishedAt) (\(rowsDone) rows); pass --restart to backfill again"
                )
            }
        }
        // Another process starting the same backfill at this moment wins the unique index;
        // this one then joins its run (each batch is taken by one of them).
        let created = try connection.query(
            """
            INSERT INTO herald.backfills (trigger_name, schema_name, table_name, condition, key_columns)
            VALUES ($1, $2, $3, $4, $5::text[])
            ON CONFLICT (trigger_name, condition) WHERE finished_at IS NULL DO NOTHING
            RETURNING id
            """,
            [trigger.name, trigger.table.schema, trigger.table.name, condition, PGArray.literal(keyColumns)])
        guard created.rowCount == 1 else {
            let joined = try connection.query(
                "SELECT id FROM herald.backfills WHERE trigger_name = $1 AND condition = $2 AND finished_at IS NULL",
                [trigger.name, condition])
            guard joined.rowCount == 1 else {
                throw PGError(code: .unexpectedResult, message: "backfill of \(trigger.name) could be neither started nor joined")
            }
            return BackfillRun(
                id: try joined.decode(Int64.self, row: 0, column: 0), keyColumns: keyColumns, lastKey: nil, rowsDone: 0,
                resumed: true)
        }
        return BackfillRun(
            id: try created.decode(Int64.self, row: 0, column: 0), keyColumns: keyColumns, lastKey: nil, rowsDone: 0,
            resumed: false)
    }

    /// Plans (without running) a query with the condition, so a typo in `--where` is
    /// reported before anything is written, naming the option.
    private func checkCondition() throws {
        // (Not `catch let error where …`: this compiler crashes on that form with a typed error.)
        let failure: PGError
        do {
            try connection.query("EXPLAIN SELECT 1 FROM \(trigger.table.quoted) WHERE \(rowCondition)")
            return
        } catch {
            failure = error
        }
        if failure.isConnectionProblem { throw failure }
        let origin = options.whereClause == nil ? " (trigger \(trigger.name)'s filter)" : ""
        throw BackfillError(
            code: .invalidCondition,
            message: "the backfill condition is not valid on table \(trigger.table)\(origin): \(failure.message)")
    }

    /// `--where` and the trigger's filter, over the table's own columns.
    var rowCondition: String {
        var parts: [String] = []
        if let whereClause = options.whereClause { parts.append("(\(whereClause))") }
        if let filter = appliedFilter {
            parts.append("(\(filter.rendered(old: "(NULL::\(trigger.table.quoted))", new: trigger.table.quoted)))")
        }
        return parts.isEmpty ? "true" : parts.joined(separator: " AND ")
    }

    /// The rows left to do, as the planner estimates them (cheap on any table size).
    public func estimateRemaining(_ run: BackfillRun) throws -> Int64? {
        let (keyset, parameters) = try keysetCondition(run)
        let result = try connection.query(
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM \(trigger.table.quoted) WHERE \(keyset) AND \(rowCondition)",
            parameters)
        let plan = try result.decode(String.self, row: 0, column: 0)
        guard let range = plan.range(of: #""Plan Rows": ([0-9]+)"#, options: .regularExpression) else { return nil }
        return Int64(plan[range].split(separator: " ").last ?? "")
    }

    /// Backfills the next batch in one transaction and returns how many rows it had; zero
    /// means the table is done and the run is marked finished.
    public func nextBatch(_ run: inout BackfillRun) throws -> Int {
        let (count, updated) = try connection.transaction { try batchInTransaction(run) }
        run = updated
        return count
    }

    private func batchInTransaction(_ before: BackfillRun) throws -> (Int, BackfillRun) {
        var run = before
        // The run's row is locked for the batch: a second process on the same backfill
        // waits here and then continues after this batch instead of repeating it.
        let current = try connection.query(
            "SELECT array_to_json(last_key)::text, rows_done, finished_at IS NOT NULL FROM herald.backfills WHERE id = $1 FOR UPDATE",
            [String(run.id)])
        guard current.rowCount == 1 else {
            throw PGError(code: .unexpectedResult, message: "backfill \(run.id) no longer exists")
        }
        run.lastKey = try current.decodeIfPresent(String.self, row: 0, column: 0).flatMap(Self.decodeKey)
        run.rowsDone = try current.decode(Int64.self, row: 0, column: 1)
        if try current.decode(Bool.self, row: 0, column: 2) {
            run.finished = true
            return (0, run)
        }
        let (sql, parameters) = try batchStatement(run)
        let result = try connection.query(sql, parameters)
        // No row when the batch is empty: the table is done.
        let count = result.rowCount == 1 ? try result.decode(Int.self, row: 0, column: 0) : 0
        if count == 0 {
            try connection.query(
                "UPDATE herald.backfills SET finished_at = now(), updated_at = now() WHERE id = $1", [String(run.id)])
            run.finished = true
            return (0, run)
        }
        let lastKey = try (0..<run.keyColumns.count).map { key throws(PGError) in
            try result.decode(String.self, row: 0, column: 1 + key)
        }
        try connection.query(
            """
            UPDATE herald.backfills SET last_key = $2::text[], rows_done = rows_done + $3, updated_at = now()
            WHERE id = $1
            """, [String(run.id), PGArray.literal(lastKey), String(count)])
        try connection.query("SELECT pg_notify('herald_events', '')")
        run.lastKey = lastKey
        run.rowsDone += Int64(count)
        return (count, run)
    }

    /// A stored key (a JSON array of text values), or nil before the first batch.
    static func decodeKey(_ json: String) -> [String]? {
        try? JSONDecoder().decode([String].self, from: Data(json.utf8))
    }

    /// `(key columns) > (last key)` with each value cast to its column's type, so the
    /// primary-key index serves the range; `true` before the first batch.
    private func keysetCondition(_ run: BackfillRun) throws -> (String, [String?]) {
        guard let lastKey = run.lastKey, lastKey.count == run.keyColumns.count else { return ("true", []) }
        let types = try columnTypes(run.keyColumns)
        let columns = run.keyColumns.map { "\(trigger.table.quoted).\(SQLQuoting.identifier($0))" }
        let values = types.enumerated().map { "$\($0.offset + 1)::\($0.element)" }
        return ("(\(columns.joined(separator: ", "))) > (\(values.joined(separator: ", ")))", lastKey)
    }

    private func columnTypes(_ columns: [String]) throws -> [String] {
        let result = try connection.query(
            """
            SELECT format_type(a.atttypid, a.atttypmod) FROM unnest($2::text[]) WITH ORDINALITY AS c(name, position)
            JOIN pg_attribute a ON a.attrelid = to_regclass($1) AND a.attname = c.name
            ORDER BY c.position
            """, [trigger.table.quoted, PGArray.literal(columns)])
        return result.column(0).compactMap { $0 }
    }

    /// One statement: select the batch, insert its events, return the count and last key.
    func batchStatement(_ run: BackfillRun) throws -> (String, [String?]) {
        let (keyset, keyParameters) = try keysetCondition(run)
        let table = trigger.table.quoted
        let keys = run.keyColumns.enumerated().map { "\(table).\(SQLQuoting.identifier($0.element)) AS herald_key_\($0.offset)" }
        let order = run.keyColumns.indices.map { "herald_key_\($0)" }.joined(separator: ", ")
        var parameters = SQLParameters(keyParameters)
        let limit = parameters.add(String(options.effectiveBatchSize))
        let payloadColumns = CaptureOperation.allCases.lazy.compactMap { trigger.spec(for: $0) }.first?.payload ?? .all
        var newRow = "herald_row"
        if case .only(let columns) = payloadColumns {
            newRow =
                "(SELECT jsonb_object_agg(key, value) FROM jsonb_each(herald_row) WHERE key = ANY (\(parameters.add(PGArray.literal(columns)))::text[]))"
        }
        var columns = "trigger_name, schema_name, table_name, payload"
        var values = """
            \(parameters.add(trigger.name)), \(parameters.add(trigger.table.schema)), \(parameters.add(trigger.table.name)),
                       jsonb_build_object('op', 'MANUAL', 'data', jsonb_build_object('old', NULL, 'new', \(newRow)),
                                          'session_variables', NULL, 'trace_context', NULL)
            """
        if let orderingKey = try TriggerInstaller.keyColumns(of: trigger, connection) {
            // The same text herald.capture_ordered() writes, so backfilled and captured
            // events of one key share it.
            columns += ", ordering_key"
            let parts = orderingKey.map { "herald_row -> \(SQLQuoting.literal($0))" }
            values += ", jsonb_build_array(\(parts.joined(separator: ", ")))::text"
        }
        // Named apart from the key columns: ORDER BY would otherwise sort by these texts
        // (an output column's name wins), and "9999" sorts after "11000".
        let lastKey = run.keyColumns.indices.map { "herald_key_\($0)::text AS last_key_\($0)" }.joined(separator: ", ")
        let sql = """
            WITH batch AS (
                SELECT \(keys.joined(separator: ", ")), to_jsonb(\(table).*) AS herald_row
                FROM \(table)
                WHERE \(keyset) AND \(rowCondition)
                ORDER BY \(run.keyColumns.map { "\(table).\(SQLQuoting.identifier($0))" }.joined(separator: ", "))
                LIMIT \(limit)::int
            ), created AS (
                INSERT INTO herald.event_log (\(columns))
                SELECT \(values)
                FROM batch ORDER BY \(order)
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM created), \(lastKey)
            FROM batch ORDER BY \(run.keyColumns.indices.map { "herald_key_\($0) DESC" }.joined(separator: ", ")) LIMIT 1
            """
        return (sql, parameters.values)
    }
}
