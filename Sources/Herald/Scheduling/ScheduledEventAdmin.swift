import Foundation

/// What `cancel-event` did with one id.
public enum CancelResult: Sendable, Equatable {
    case cancelled(id: String)
    case unknown(String)
    /// Not a scheduled event (a captured change): `skip-event` is what stops those.
    case notScheduled(String)
    case notPending(id: String, status: String)
    case busy(id: String, worker: String)
}

/// One pending scheduled event, as `herald scheduled` lists it.
public struct PendingScheduledEvent: Sendable, Equatable {
    public var id: String
    /// The cron trigger's name, or nil for a one-off event.
    public var cronTrigger: String?
    public var scheduledTime: String
    public var nextAttemptAt: String
    public var tries: Int
    /// The webhook with credentials and query redacted (one-off events; cron triggers show
    /// their configured webhook).
    public var webhook: String
    public var comment: String?
    /// The worker holding its lease while it is being delivered.
    public var lockedBy: String?
}

/// A cron trigger's schedule and history, as `herald scheduled` lists it.
public struct CronTriggerStatus: Sendable, Equatable {
    public var name: String
    public var schedule: String
    public var nextTick: String?
    public var lastTick: String?
    public var created24h: Int
    public var missed24h: Int
    public var missedTotal: Int
}

/// Scheduled events from the operator's side: one-off events created, listed, cancelled.
public struct ScheduledEventAdmin {
    public let admin: EventAdmin

    public init(admin: EventAdmin) {
        self.admin = admin
    }

    /// A one-off event through `herald.schedule_event`, the function applications call.
    /// `headers` and `retryConf` are JSON texts (an array and an object).
    public func schedule(
        webhook: String, at time: String, payload: String?, headers: String, retryConf: String, comment: String?
    ) throws -> String {
        let result = try admin.connection.query(
            "SELECT herald.schedule_event($1, $2::timestamptz, $3::jsonb, $4::jsonb, $5::jsonb, $6)::text",
            [webhook, time, payload, headers, retryConf, comment])
        return try result.decode(String.self, row: 0, column: 0)
    }

    /// Pending one-off events and cron ticks, soonest first, at most `limit`.
    public func pending(limit: Int) throws -> [PendingScheduledEvent] {
        let result = try admin.connection.query(
            """
            SELECT id, trigger_name, payload ->> 'scheduled_time',
                   to_char(next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), tries,
                   coalesce(payload ->> 'webhook', ''), payload ->> 'comment',
                   CASE WHEN locked_by IS NOT NULL AND next_attempt_at > now() THEN locked_by END, imported_id::text
            FROM herald.event_log
            WHERE status = 'pending' AND schema_name = 'herald' AND table_name IN ('scheduled_events', 'cron_triggers')
            ORDER BY next_attempt_at, id
            LIMIT $1
            """, [String(limit)])
        // The public id from the same row (``EventAdmin/publicID(_:)`` would query once per event):
        // the imported one when Hasura's id was kept, else the one derived from the number.
        return try result.rows { row throws(PGError) in
            let number = try result.decode(Int64.self, row: row, column: 0)
            let trigger = try result.decode(String.self, row: row, column: 1)
            return PendingScheduledEvent(
                id: try result.decodeIfPresent(String.self, row: row, column: 8)
                    ?? EventID.uuid(key: admin.key, number: number),
                cronTrigger: trigger == TriggerConfig.oneOffName ? nil : trigger,
                scheduledTime: try result.decode(String.self, row: row, column: 2),
                nextAttemptAt: try result.decode(String.self, row: row, column: 3),
                tries: try result.decode(Int.self, row: row, column: 4),
                webhook: Redaction.url(try result.decode(String.self, row: row, column: 5)),
                comment: try result.decodeIfPresent(String.self, row: row, column: 6),
                lockedBy: try result.decodeIfPresent(String.self, row: row, column: 7))
        }
    }

    /// Each cron trigger of `triggers` with its next tick (from now), its newest logged tick
    /// and its created and missed ticks.
    public func cronStatus(_ triggers: [TriggerConfig], now: Date = Date()) throws -> [CronTriggerStatus] {
        let result = try admin.connection.query(
            """
            SELECT trigger_name, herald.scheduled_time_text(max(scheduled_time)),
                   count(*) FILTER (WHERE outcome = 'created' AND scheduled_time > now() - interval '24 hours'),
                   count(*) FILTER (WHERE outcome = 'missed' AND scheduled_time > now() - interval '24 hours'),
                   count(*) FILTER (WHERE outcome = 'missed')
            FROM herald.cron_ticks WHERE trigger_name = ANY ($1::text[]) GROUP BY trigger_name
            """, [PGArray.literal(triggers.map(\.name))])
        var rows: [String: (String, Int, Int, Int)] = [:]
        for row in 0..<result.rowCount {
            rows[try result.decode(String.self, row: row, column: 0)] = (
                try result.decode(String.self, row: row, column: 1), try result.decode(Int.self, row: row, column: 2),
                try result.decode(Int.self, row: row, column: 3), try result.decode(Int.self, row: row, column: 4)
            )
        }
        let formatter = ISO8601DateFormatter()
        return triggers.compactMap { trigger in
            guard let schedule = trigger.schedule?.cronSchedule else { return nil }
            let row = rows[trigger.name]
            return CronTriggerStatus(
                name: trigger.name, schedule: schedule.description,
                nextTick: schedule.next(after: now).map { formatter.string(from: $0) }, lastTick: row?.0,
                created24h: row?.1 ?? 0, missed24h: row?.2 ?? 0, missedTotal: row?.3 ?? 0)
        }
    }

    /// Deletes a pending scheduled event (Hasura's delete_scheduled_event), unless a worker
    /// is sending it right now. Captured changes are refused: `skip-event` keeps their record.
    public func cancel(_ text: String) throws -> CancelResult {
        guard let number = try admin.number(for: text) else { return .unknown(text) }
        let id = try admin.publicID(number)
        let result = try admin.connection.query(
            """
            WITH target AS (
                SELECT id, status, schema_name = 'herald' AND table_name IN ('scheduled_events', 'cron_triggers') AS scheduled,
                       locked_by IS NOT NULL AND next_attempt_at > now() AS leased, locked_by
                FROM herald.event_log WHERE id = $1 FOR UPDATE),
            gone AS (
                DELETE FROM herald.event_log e USING target
                WHERE e.id = target.id AND target.scheduled AND target.status = 'pending' AND NOT target.leased
                RETURNING e.id, e.trigger_name, e.xid),
            -- Attempt rows have no foreign key (schema version 13): they go with their event.
            attempts AS (
                DELETE FROM herald.invocation_log i USING gone WHERE i.event_id = gone.id),
            horizon AS (\(StreamHorizon.recordSQL(from: "gone")))
            SELECT target.status, target.scheduled, target.leased, target.locked_by, (SELECT count(*) FROM gone)
            FROM target
            """, [String(number)])
        guard result.rowCount == 1 else { return .unknown(text) }
        if try result.decode(Int.self, row: 0, column: 4) == 1 { return .cancelled(id: id) }
        if !(try result.decode(Bool.self, row: 0, column: 1)) { return .notScheduled(id) }
        let status = try result.decode(String.self, row: 0, column: 0)
        if status != "pending" { return .notPending(id: id, status: status) }
        // Pending, scheduled and not deleted: it is leased, so locked_by is set.
        return .busy(id: id, worker: try result.decode(String.self, row: 0, column: 3))
    }
}
