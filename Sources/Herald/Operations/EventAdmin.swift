import Foundation

/// What happened to one id given to `redeliver-event`.
public enum RedeliveryResult: Sendable, Equatable {
    case queued(number: Int64)
    case unknown(String)
    case busy(number: Int64, worker: String)
}

/// What happened to the id given to `skip-event`.
public enum SkipResult: Sendable, Equatable {
    case skipped(number: Int64, orderingKey: String?)
    case unknown(String)
    case notPending(number: Int64, status: String)
    case busy(number: Int64, worker: String)
}

/// Operator actions on the event log: redeliver and invoke. Each statement is one
/// transaction; ids travel as parameters.
public struct EventAdmin {
    public let connection: PGConnection
    public let key: EventIDKey

    public init(connection: PGConnection) throws {
        self.connection = connection
        try SchemaCheck.requireInstalled(connection)
        key = try EventStore(connection: connection).eventIDKey()
    }

    /// With the id key already known (it never changes), saving a query.
    public init(connection: PGConnection, key: EventIDKey) {
        self.connection = connection
        self.key = key
    }

    /// The public id (what receivers saw as `webhook-id`) of event `number`: Hasura's UUID
    /// for an event moved from Hasura, else the id derived from the number.
    public func publicID(_ number: Int64) throws -> String {
        let imported = try connection.query(
            "SELECT imported_id::text FROM herald.event_log WHERE id = $1", [String(number)])
        if imported.rowCount == 1, let id = try imported.decodeIfPresent(String.self, row: 0, column: 0) { return id }
        return EventID.uuid(key: key, number: number)
    }

    /// The event number for a payload id, an imported Hasura id or a typed number.
    public func number(for text: String) throws -> Int64? {
        if let number = EventID.number(from: text, key: key) { return number }
        guard let uuid = UUID(uuidString: text) else { return nil }
        let result = try connection.query(
            "SELECT id FROM herald.event_log WHERE imported_id = $1::uuid", [uuid.uuidString.lowercased()])
        return result.rowCount == 1 ? try result.decode(Int64.self, row: 0, column: 0) : nil
    }

    /// Puts one event back to pending with tries reset and due now (Hasura's
    /// redeliver_event). The event keeps its id, so `webhook-id` stays the same. An event
    /// leased by a live worker is refused unless `force`.
    public func redeliver(_ text: String, force: Bool) throws -> RedeliveryResult {
        guard let number = try number(for: text) else { return .unknown(text) }
        let result = try connection.query(
            """
            WITH target AS (
                SELECT id, status = 'pending' AND locked_by IS NOT NULL AND next_attempt_at > now() AS leased, locked_by
                FROM herald.event_log WHERE id = $1 FOR UPDATE),
            changed AS (
                UPDATE herald.event_log e
                SET status = 'pending', tries = 0, next_attempt_at = now(), locked_at = NULL, locked_by = NULL,
                    finished_at = NULL, \(Self.requeueInKeyOrder)
                FROM target WHERE e.id = target.id AND (NOT target.leased OR $2::bool)
                RETURNING e.id)
            SELECT target.leased, target.locked_by, (SELECT count(*) FROM changed), pg_notify('herald_events', '')
            FROM target
            """, [String(number), force ? "true" : "false"])
        guard result.rowCount == 1 else { return .unknown(text) }
        if try result.decode(Int.self, row: 0, column: 2) == 1 { return .queued(number: number) }
        // Not changed, so leased: locked_by is set.
        return .busy(number: number, worker: try result.decode(String.self, row: 0, column: 1))
    }

    /// The SET items that place a redelivered keyed event in its key's order. A finished
    /// event goes to the back of its key: it is sent after every event of the key pending
    /// now, so an old value never overtakes a newer one still waiting (its position is a
    /// fresh number of the id sequence, after every event captured so far). A pending one
    /// keeps its place: a blocked head is retried as the head.
    static let requeueInKeyOrder = """
        ordering_position = CASE WHEN ordering_key IS NOT NULL AND status <> 'pending'
                                 THEN nextval(pg_get_serial_sequence('herald.event_log', 'id'))
                                 ELSE ordering_position END,
        blocked_at = NULL
        """

    /// Marks a pending event failed without sending it (`herald skip-event`): a blocked head
    /// releases its key, and the next event of the key is claimed at once. An event leased
    /// by a live worker is refused unless `force` (its request may be on the wire; with
    /// `force` its outcome is then ignored).
    public func skip(_ text: String, by: String, force: Bool) throws -> SkipResult {
        guard let number = try number(for: text) else { return .unknown(text) }
        let result = try connection.query(
            """
            WITH target AS (
                SELECT id, status, status = 'pending' AND locked_by IS NOT NULL AND next_attempt_at > now() AS leased,
                       locked_by, ordering_key
                FROM herald.event_log WHERE id = $1 FOR UPDATE),
            changed AS (
                UPDATE herald.event_log e
                SET status = 'failed', finished_at = now(), locked_at = NULL, locked_by = NULL, blocked_at = NULL,
                    last_error = 'skipped by ' || $3 || coalesce(' (was: ' || e.last_error || ')', '')
                FROM target
                WHERE e.id = target.id AND target.status = 'pending' AND (NOT target.leased OR $2::bool)
                RETURNING e.id)
            SELECT target.status, target.leased, target.locked_by, (SELECT count(*) FROM changed), target.ordering_key,
                   pg_notify('herald_events', '')
            FROM target
            """, [String(number), force ? "true" : "false", by])
        guard result.rowCount == 1 else { return .unknown(text) }
        if try result.decode(Int.self, row: 0, column: 3) == 1 {
            return .skipped(number: number, orderingKey: try result.decodeIfPresent(String.self, row: 0, column: 4))
        }
        let status = try result.decode(String.self, row: 0, column: 0)
        if status != "pending" { return .notPending(number: number, status: status) }
        // Pending and not changed, so leased: locked_by is set.
        return .busy(number: number, worker: try result.decode(String.self, row: 0, column: 2))
    }

    /// Counts the events a bulk redelivery would touch.
    public func countMatching(trigger: String, status: String, sinceSeconds: Int?) throws -> Int {
        try countMatching(EventFilter(trigger: trigger, status: status, sinceSeconds: sinceSeconds), keyColumns: [])
    }

    /// Redelivers every event of a trigger in a status (leased ones excluded unless `force`);
    /// returns how many were queued.
    public func redeliverAll(trigger: String, status: String, sinceSeconds: Int?, force: Bool) throws -> Int {
        try redeliverAll(
            EventFilter(trigger: trigger, status: status, sinceSeconds: sinceSeconds), keyColumns: [], force: force)
    }

    /// Why `data` cannot be a manual event's `data.new`, or nil: Hasura's manual payload is a
    /// row, so anything but a JSON object would reach receivers in a shape they never get.
    public static func manualDataProblem(_ data: String) -> String? {
        guard let value = try? JSONSerialization.jsonObject(with: Data(data.utf8), options: [.fragmentsAllowed]) else {
            return "is not valid JSON"
        }
        return value is [String: Any] ? nil : "must be a JSON object (a row, as in Hasura's manual invocation)"
    }

    /// Creates a MANUAL event for `trigger` with `data` as `data.new`, and wakes the workers.
    /// The JSON is validated by PostgreSQL; the error names it.
    public func invoke(trigger: TriggerConfig, data: String) throws -> Int64 {
        let result = try connection.query(
            """
            WITH created AS (
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload)
                VALUES ($1, $2, $3, jsonb_build_object(
                    'op', 'MANUAL', 'data', jsonb_build_object('old', NULL, 'new', $4::jsonb),
                    'session_variables', NULL, 'trace_context', NULL))
                RETURNING id)
            SELECT id, pg_notify('herald_events', '') FROM created
            """, [trigger.name, trigger.table.schema, trigger.table.name, data])
        guard result.rowCount == 1 else {
            throw PGError(code: .unexpectedResult, message: "insert returned no id")
        }
        return try result.decode(Int64.self, row: 0, column: 0)
    }
}

extension EventAdmin {
    /// The primary-key column names of the configured tables, for finding an event by a
    /// key value. Tables that do not exist (yet) are skipped. Reads the catalog only, so a
    /// SELECT-only role can run it.
    public func keyColumns(of tables: [TableName]) throws -> [String] {
        let result = try connection.query(
            """
            SELECT DISTINCT a.attname::text FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
            WHERE i.indisprimary
              AND i.indrelid IN (SELECT to_regclass(t) FROM unnest($1::text[]) t WHERE to_regclass(t) IS NOT NULL)
            ORDER BY 1
            """, [PGArray.literal(tables.map(\.quoted))])
        return result.column(0).compactMap { $0 }
    }

    /// Counts the events `filter` selects.
    public func countMatching(_ filter: EventFilter, keyColumns: [String]) throws -> Int {
        let (conditions, parameters) = try filter.conditions(key: key, keyColumns: keyColumns)
        let result = try connection.query(
            "SELECT count(*) FROM herald.event_log WHERE \(Self.conjunction(conditions))", parameters)
        return try result.decode(Int.self, row: 0, column: 0)
    }

    /// Redelivers every event `filter` selects (leased ones excluded unless `force`), in one
    /// statement; returns how many were queued.
    public func redeliverAll(_ filter: EventFilter, keyColumns: [String], force: Bool) throws -> Int {
        let (conditions, parameters) = try filter.conditions(key: key, keyColumns: keyColumns)
        let forceParameter = "$\(parameters.count + 1)"
        let result = try connection.query(
            """
            WITH changed AS (
                UPDATE herald.event_log
                SET status = 'pending', tries = 0, next_attempt_at = now(), locked_at = NULL, locked_by = NULL,
                    finished_at = NULL, \(Self.requeueInKeyOrder)
                WHERE \(Self.conjunction(conditions))
                  AND (\(forceParameter)::bool OR NOT (status = 'pending' AND locked_by IS NOT NULL AND next_attempt_at > now()))
                RETURNING id)
            SELECT count(*), pg_notify('herald_events', '') FROM changed
            """, parameters + [force ? "true" : "false"])
        return try result.decode(Int.self, row: 0, column: 0)
    }

    static func conjunction(_ conditions: [String]) -> String {
        conditions.isEmpty ? "true" : conditions.joined(separator: " AND ")
    }
}
