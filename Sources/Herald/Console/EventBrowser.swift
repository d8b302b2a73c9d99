import Foundation

/// The console's reads of the event log. SELECT only (a read-only role can run every one),
/// each a single statement, each bounded by a LIMIT or an index range.
struct EventBrowser {
    static let pageSize = 50

    struct Row: Sendable {
        var number: Int64
        /// What receivers saw as `webhook-id`.
        var publicID: String
        var trigger: String
        var table: String
        var operation: String
        var status: String
        var leased: Bool
        var tries: Int
        var createdAt: String
        var lastStatusCode: Int?
        var lastError: String?
        /// The start of the row's data (new, else old), as JSON.
        var preview: String
    }

    struct Page: Sendable {
        var rows: [Row]
        /// Keyset cursors: the links to older and newer pages, when there are any.
        var olderThan: Int64?
        var newerThan: Int64?
    }

    /// Which page: the newest, the one before `olderThan`, or the one after `newerThan`.
    enum Cursor: Sendable, Equatable {
        case newest
        case before(Int64)
        case after(Int64)
    }

    struct Attempt: Sendable {
        var attempt: Int
        var statusCode: Int?
        var errorClass: String?
        var errorMessage: String?
        var headers: [(name: String, value: String)]
        var responseBody: String?
        var durationMs: Double
        var at: String
    }

    struct Detail: Sendable {
        var event: ClaimedEvent
        var status: String
        var leasedBy: String?
        var nextAttemptAt: String
        var finishedAt: String?
        var lastStatusCode: Int?
        var lastError: String?
        var attempts: [Attempt]
    }

    struct Throughput: Sendable {
        /// Per minute of the last hour, oldest first: 2xx responses and failed attempts.
        var delivered: [Int]
        var failed: [Int]
    }

    static let minutes = 60

    let connection: PGConnection
    let key: EventIDKey

    init(_ admin: EventAdmin) {
        connection = admin.connection
        key = admin.key
    }

    /// One page of the events `filter` selects, newest first.
    ///
    /// Keyset pagination on the primary key: `id < cursor ORDER BY id DESC LIMIT n+1` costs
    /// the same on page 1 and page 10,000 (OFFSET would read and drop every row before the
    /// page), and a link stays valid while new events arrive.
    func page(_ filter: EventFilter, keyColumns: [String], cursor: Cursor) throws -> Page {
        var (conditions, parameters) = try filter.conditions(key: key, keyColumns: keyColumns)
        let ascending: Bool
        switch cursor {
        case .newest:
            ascending = false
        case .before(let id):
            parameters.append(String(id))
            conditions.append("id < $\(parameters.count)::bigint")
            ascending = false
        case .after(let id):
            parameters.append(String(id))
            conditions.append("id > $\(parameters.count)::bigint")
            ascending = true
        }
        let result = try connection.query(
            """
            SELECT id, trigger_name, schema_name || '.' || table_name, payload->>'op', status,
                   status = 'pending' AND locked_by IS NOT NULL AND next_attempt_at > now(), tries,
                   to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), last_status_code, left(last_error, 200),
                   left(coalesce(payload->'data'->'new', payload->'data'->'old')::text, 160), imported_id::text
            FROM herald.event_log
            WHERE \(EventAdmin.conjunction(conditions))
            ORDER BY id \(ascending ? "ASC" : "DESC") LIMIT \(Self.pageSize + 1)
            """, parameters)
        var rows = try result.rows { index throws(PGError) in
            let number = try result.decode(Int64.self, row: index, column: 0)
            return Row(
                number: number,
                // Hasura's id for an event moved from Hasura, else the one derived from the number.
                publicID: try result.decodeIfPresent(String.self, row: index, column: 11)
                    ?? EventID.uuid(key: key, number: number),
                trigger: try result.decode(String.self, row: index, column: 1),
                table: try result.decode(String.self, row: index, column: 2),
                // A scheduled event's payload has neither op nor data: both cells stay empty.
                operation: try result.decodeIfPresent(String.self, row: index, column: 3) ?? "",
                status: try result.decode(String.self, row: index, column: 4),
                leased: try result.decode(Bool.self, row: index, column: 5),
                tries: try result.decode(Int.self, row: index, column: 6),
                createdAt: try result.decode(String.self, row: index, column: 7),
                lastStatusCode: try result.decodeIfPresent(Int.self, row: index, column: 8),
                lastError: try result.decodeIfPresent(String.self, row: index, column: 9),
                preview: try result.decodeIfPresent(String.self, row: index, column: 10) ?? "")
        }
        let more = rows.count > Self.pageSize
        if more { rows.removeLast() }
        if ascending { rows.reverse() }
        guard let first = rows.first, let last = rows.last else {
            // An empty page past either end still links back.
            switch cursor {
            case .newest: return Page(rows: [], olderThan: nil, newerThan: nil)
            case .before(let id): return Page(rows: [], olderThan: nil, newerThan: id - 1)
            case .after(let id): return Page(rows: [], olderThan: id + 1, newerThan: nil)
            }
        }
        switch cursor {
        case .newest: return Page(rows: rows, olderThan: more ? last.number : nil, newerThan: nil)
        case .before: return Page(rows: rows, olderThan: more ? last.number : nil, newerThan: first.number)
        case .after: return Page(rows: rows, olderThan: last.number, newerThan: more ? first.number : nil)
        }
    }

    /// One event with every attempt, or nil when there is no such event.
    func detail(_ number: Int64) throws -> Detail? {
        let result = try connection.query(
            """
            SELECT id, trigger_name, schema_name, table_name, payload::text, tries,
                   to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), extract(epoch FROM created_at),
                   status, CASE WHEN status = 'pending' AND locked_by IS NOT NULL AND next_attempt_at > now() THEN locked_by END,
                   to_char(next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                   to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), last_status_code, last_error
            FROM herald.event_log WHERE id = $1::bigint
            """, [String(number)])
        guard result.rowCount == 1 else { return nil }
        let event = ClaimedEvent(
            id: number, triggerName: try result.decode(String.self, row: 0, column: 1),
            table: TableName(
                schema: try result.decode(String.self, row: 0, column: 2),
                name: try result.decode(String.self, row: 0, column: 3)),
            payload: try result.decode(String.self, row: 0, column: 4),
            tries: try result.decode(Int.self, row: 0, column: 5),
            createdAt: try result.decode(String.self, row: 0, column: 6),
            createdAtEpoch: try result.decode(Double.self, row: 0, column: 7))
        let attempts = try connection.query(
            """
            SELECT i.attempt, i.status_code, i.error_class, i.error_message,
                   coalesce(b.request_headers, i.request_headers)::text, coalesce(b.response_body, i.response_body),
                   i.duration_ms, to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')
            FROM herald.invocation_log i
            -- A batch's headers and response are on its first row, written in the same statement (schema version 14).
            LEFT JOIN LATERAL (
                SELECT r.request_headers, r.response_body FROM herald.invocation_log r
                WHERE i.batch_id IS NOT NULL AND i.request_headers = '{}'::jsonb
                  AND r.batch_id = i.batch_id AND r.request_headers <> '{}'::jsonb AND r.created_at = i.created_at
                LIMIT 1) b ON true
            WHERE i.event_id = $1::bigint ORDER BY i.id LIMIT 500
            """, [String(number)])
        return Detail(
            event: event, status: try result.decode(String.self, row: 0, column: 8),
            leasedBy: try result.decodeIfPresent(String.self, row: 0, column: 9),
            nextAttemptAt: try result.decode(String.self, row: 0, column: 10),
            finishedAt: try result.decodeIfPresent(String.self, row: 0, column: 11),
            lastStatusCode: try result.decodeIfPresent(Int.self, row: 0, column: 12),
            lastError: try result.decodeIfPresent(String.self, row: 0, column: 13),
            attempts: try attempts.rows { row throws(PGError) in
                Attempt(
                    attempt: try attempts.decode(Int.self, row: row, column: 0),
                    statusCode: try attempts.decodeIfPresent(Int.self, row: row, column: 1),
                    errorClass: try attempts.decodeIfPresent(String.self, row: row, column: 2),
                    errorMessage: try attempts.decodeIfPresent(String.self, row: row, column: 3),
                    headers: Self.recordedHeaders(try attempts.decode(String.self, row: row, column: 4)),
                    responseBody: try attempts.decodeIfPresent(String.self, row: row, column: 5),
                    durationMs: try attempts.decode(Double.self, row: row, column: 6),
                    at: try attempts.decode(String.self, row: row, column: 7))
            })
    }

    /// Recorded headers, sorted by name, with sensitive ones redacted again: rows written
    /// before a header counted as sensitive must not show it now.
    static func recordedHeaders(_ json: String) -> [(name: String, value: String)] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return [] }
        return object.keys.sorted().map { name in
            let value = object[name].map { "\($0)" } ?? ""
            return (name, Redaction.isSensitiveHeader(name) ? Redaction.placeholder : value)
        }
    }

    /// Pending and failed events in one log (a Citus worker node's, for the overview): the
    /// two statuses with partial indexes, so delivered events, the bulk of a log, are not
    /// scanned.
    static func statusCounts(_ connection: PGConnection) throws(PGError) -> [String: Int] {
        let result = try connection.query(
            """
            SELECT (SELECT count(*) FROM herald.event_log WHERE status = 'pending'),
                   (SELECT count(*) FROM herald.event_log WHERE status = 'failed')
            """)
        return [
            "pending": try result.decode(Int.self, row: 0, column: 0),
            "failed": try result.decode(Int.self, row: 0, column: 1),
        ]
    }

    /// Attempts per trigger per minute over the last hour (from the invocation log's
    /// created_at index, so it reads an hour of rows, not the log).
    func throughput() throws -> [String: Throughput] {
        let result = try connection.query(
            """
            SELECT trigger_name, floor(extract(epoch FROM now() - created_at) / 60)::int,
                   count(*) FILTER (WHERE status_code BETWEEN 200 AND 299),
                   count(*) FILTER (WHERE status_code IS NULL OR status_code NOT BETWEEN 200 AND 299)
            FROM herald.invocation_log WHERE created_at > now() - interval '\(Self.minutes) minutes'
            GROUP BY 1, 2
            """)
        var byTrigger: [String: Throughput] = [:]
        for row in 0..<result.rowCount {
            let name = try result.decode(String.self, row: row, column: 0)
            let minutesAgo = try result.decode(Int.self, row: row, column: 1)
            guard (0..<Self.minutes).contains(minutesAgo) else { continue }
            var series = byTrigger[name] ?? Throughput(
                delivered: Array(repeating: 0, count: Self.minutes), failed: Array(repeating: 0, count: Self.minutes))
            let index = Self.minutes - 1 - minutesAgo
            series.delivered[index] += try result.decode(Int.self, row: row, column: 2)
            series.failed[index] += try result.decode(Int.self, row: row, column: 3)
            byTrigger[name] = series
        }
        return byTrigger
    }
}

extension EventBrowser {
    /// A trigger's state as `herald.trigger_state` holds it (issue 9): disabled, and the
    /// circuit breaker state a worker last recorded. Triggers without a row are enabled.
    struct TriggerState: Sendable, Equatable {
        var enabled = true
        var reason: String?
        var circuit = "closed"
    }

    func triggerStates() throws -> [String: TriggerState] {
        let result = try connection.query("SELECT trigger_name, enabled, reason, circuit_state FROM herald.trigger_state")
        var states: [String: TriggerState] = [:]
        for row in 0..<result.rowCount {
            states[try result.decode(String.self, row: row, column: 0)] = TriggerState(
                enabled: try result.decode(Bool.self, row: row, column: 1),
                reason: try result.decodeIfPresent(String.self, row: row, column: 2),
                circuit: try result.decode(String.self, row: row, column: 3))
        }
        return states
    }

    /// The overview's numbers: exact where an operator acts on them, delivered estimated on
    /// a large log (``QueueStats/readBounded(_:configured:exactCountLimit:)``).
    func overview(configured: [String]) throws -> QueueStats {
        try QueueStats.readBounded(connection, configured: configured)
    }
}
