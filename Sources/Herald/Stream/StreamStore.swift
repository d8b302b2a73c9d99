import Foundation

/// The stream's SQL: reads one trigger's events after a ``StreamCursor``, in (transaction,
/// id) order, through `event_log_stream`. Read-only: a stream changes no delivery state.
struct StreamStore {
    let connection: PGConnection

    /// One read: the page, the snapshot it was read in, and the trigger's deletion horizon
    /// as that same snapshot saw it (so a deletion the page missed is never missed by the
    /// horizon check too).
    struct Read {
        var horizon: UInt64?
        var page: StreamPaging.Page
        var events: [ClaimedEvent]
    }

    /// The events after `cursor`, at most `limit`: the rest of its open window, or (with
    /// none open) a new window at the current snapshot. In one statement, so the rows, the
    /// snapshot that opens a window and the horizon are one consistent view.
    func read(trigger: String, after cursor: StreamCursor, limit: Int) throws(PGError) -> Read {
        var parameters: [String?] = [trigger, String(limit), String(cursor.served.xmax)]
        var window = ""
        if let open = cursor.window {
            parameters += [open.upTo.postgres, String(open.upTo.xmax), String(open.last.xid), String(open.last.id)]
            window = """
                 AND e.xid < $5::xid8 AND pg_catalog.pg_visible_in_snapshot(e.xid, $4::pg_snapshot)
                 AND (e.xid, e.id) > ($6::xid8, $7::bigint)
                """
        }
        var branches = [
            "(SELECT \(Self.columns) FROM herald.event_log e WHERE e.trigger_name = $1 AND e.xid >= $3::xid8\(window) ORDER BY e.xid, e.id LIMIT $2::int)"
        ]
        if !cursor.served.inProgress.isEmpty {
            // Transactions that were running when `served` was taken: their ids are below its
            // xmax, so they come first.
            parameters.append(PGArray.literal(cursor.served.inProgress.map(String.init)))
            branches.insert(
                "(SELECT \(Self.columns) FROM herald.event_log e WHERE e.trigger_name = $1 AND e.xid = ANY ($\(parameters.count)::xid8[])\(window) ORDER BY e.xid, e.id LIMIT $2::int)",
                at: 0)
        }
        let result = try connection.query(
            """
            WITH page AS (
                SELECT * FROM (\(branches.joined(separator: " UNION ALL "))) branches ORDER BY xid, id LIMIT $2::int)
            SELECT s.horizon, s.snapshot, page.*
            FROM (SELECT (SELECT h.xid::text FROM herald.stream_horizon h WHERE h.trigger_name = $1) AS horizon,
                         pg_catalog.pg_current_snapshot()::text AS snapshot) s
            LEFT JOIN page ON true
            ORDER BY page.xid, page.id
            """, parameters)
        let snapshotText = try result.decode(String.self, row: 0, column: 1)
        guard let current = StreamSnapshot(postgres: snapshotText) else {
            throw PGError(code: .unexpectedResult, message: "a snapshot Herald cannot read: \(snapshotText)")
        }
        var events: [ClaimedEvent] = []
        var positions: [StreamCursor.Position] = []
        for row in 0..<result.rowCount where !result.isNull(row, 2) {
            let event = try Self.decode(result, row: row, trigger: trigger)
            events.append(event)
            positions.append(.init(xid: try result.decode(UInt64.self, row: row, column: 3), id: event.id))
        }
        return Read(
            horizon: try result.decodeIfPresent(UInt64.self, row: 0, column: 0),
            page: .init(snapshot: cursor.window?.upTo ?? current, positions: positions), events: events)
    }

    /// The trigger's deletion horizon and the current snapshot: where `after=now` and an
    /// absent `after` start.
    func start(trigger: String) throws(PGError) -> (horizon: UInt64?, current: StreamSnapshot) {
        let result = try connection.query(
            """
            SELECT (SELECT h.xid::text FROM herald.stream_horizon h WHERE h.trigger_name = $1),
                   pg_catalog.pg_current_snapshot()::text
            """, [trigger])
        let text = try result.decode(String.self, row: 0, column: 1)
        guard let current = StreamSnapshot(postgres: text) else {
            throw PGError(code: .unexpectedResult, message: "a snapshot Herald cannot read: \(text)")
        }
        return (try result.decodeIfPresent(UInt64.self, row: 0, column: 0), current)
    }

    static let columns = """
        e.id, e.xid, e.schema_name, e.table_name, e.payload::text,
        to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_text,
        extract(epoch FROM e.created_at) AS created_epoch, e.imported_id::text AS imported
        """

    /// A row as the payload builder takes it: never attempted (the stream sends each event
    /// as its first webhook attempt would carry it).
    private static func decode(_ result: PGResult, row: Int, trigger: String) throws(PGError) -> ClaimedEvent {
        ClaimedEvent(
            id: try result.decode(Int64.self, row: row, column: 2),
            triggerName: trigger,
            table: TableName(
                schema: try result.decode(String.self, row: row, column: 4),
                name: try result.decode(String.self, row: row, column: 5)),
            payload: try result.decode(String.self, row: row, column: 6),
            tries: 0,
            createdAt: try result.decode(String.self, row: row, column: 7),
            createdAtEpoch: try result.decode(Double.self, row: row, column: 8),
            leaseToken: 0,
            importedID: try result.decodeIfPresent(String.self, row: row, column: 9),
            orderingKey: nil,
            attemptedBefore: false)
    }
}

/// What every statement that deletes events adds, so streams learn of it: the newest
/// transaction of each trigger whose events it deleted, from a relation `deleted` with
/// `trigger_name` and `xid` columns (a CTE's `RETURNING`, or a partition about to be dropped).
enum StreamHorizon {
    static func recordSQL(from deleted: String) -> String {
        """
        INSERT INTO herald.stream_horizon AS h (trigger_name, xid)
        SELECT d.trigger_name, max(d.xid) FROM \(deleted) d WHERE d.xid IS NOT NULL GROUP BY d.trigger_name
        ON CONFLICT (trigger_name) DO UPDATE SET xid = greatest(h.xid, excluded.xid), updated_at = now()
        """
    }
}
