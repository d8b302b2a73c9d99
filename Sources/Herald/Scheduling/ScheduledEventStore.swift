import Foundation

/// The statements of scheduled work: cron ticks, one-off events, their listing and
/// cancelling. One place per statement, as ``EventStore`` does for the worker's.
public struct ScheduledEventStore {
    let connection: PGConnection

    public init(connection: PGConnection) {
        self.connection = connection
    }

    /// The newest logged tick of each of `triggers` (created or missed).
    func lastTicks(_ triggers: [String]) throws(PGError) -> [String: Date] {
        let result = try connection.query(
            """
            SELECT trigger_name, extract(epoch FROM max(scheduled_time))
            FROM herald.cron_ticks WHERE trigger_name = ANY ($1::text[]) GROUP BY trigger_name
            """, [PGArray.literal(triggers)])
        var last: [String: Date] = [:]
        for row in 0..<result.rowCount {
            last[try result.decode(String.self, row: row, column: 0)] = Date(
                timeIntervalSince1970: try result.decode(Double.self, row: row, column: 1))
        }
        return last
    }

    struct TickWrite {
        var trigger: String
        var time: Date
        var missed: Bool
    }

    /// Logs ticks, each exactly once whatever other workers do: the tick row's primary key
    /// decides, in the same statement, which insert creates the tick's event. Returns the
    /// ticks this call created and recorded as missed (others had been logged already).
    func logTicks(_ ticks: [TickWrite]) throws(PGError) -> (created: [String: Int], missed: [String: Int]) {
        guard !ticks.isEmpty else { return ([:], [:]) }
        let result = try connection.query(
            """
            WITH logged AS (
                INSERT INTO herald.cron_ticks (trigger_name, scheduled_time, outcome)
                SELECT t.trigger_name, to_timestamp(t.epoch), CASE WHEN t.missed THEN 'missed' ELSE 'created' END
                FROM unnest($1::text[], $2::float8[], $3::bool[]) AS t(trigger_name, epoch, missed)
                ON CONFLICT DO NOTHING
                RETURNING trigger_name, scheduled_time, outcome),
            events AS (
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, next_attempt_at, imported_id)
                SELECT trigger_name, 'herald', 'cron_triggers',
                       jsonb_build_object('scheduled_time', herald.scheduled_time_text(scheduled_time)),
                       scheduled_time, gen_random_uuid()
                FROM logged WHERE outcome = 'created'
                RETURNING 1)
            SELECT trigger_name, outcome, count(*) FROM logged GROUP BY 1, 2
            """,
            [
                PGArray.literal(ticks.map(\.trigger)),
                PGArray.literal(ticks.map { String(format: "%.6f", $0.time.timeIntervalSince1970) }),
                PGArray.literal(ticks.map { $0.missed ? "t" : "f" }),
            ])
        var created: [String: Int] = [:]
        var missed: [String: Int] = [:]
        for row in 0..<result.rowCount {
            let trigger = try result.decode(String.self, row: row, column: 0)
            let count = try result.decode(Int.self, row: row, column: 2)
            if try result.decode(String.self, row: row, column: 1) == "missed" {
                missed[trigger, default: 0] += count
            } else {
                created[trigger, default: 0] += count
            }
        }
        return (created, missed)
    }

    /// When the next pending one-off event falls due, if one is scheduled after now.
    func nextOneOffDue() throws(PGError) -> Date? {
        let result = try connection.query(
            """
            SELECT extract(epoch FROM min(next_attempt_at)) FROM herald.event_log
            WHERE trigger_name = $1 AND status = 'pending' AND ordering_key IS NULL AND next_attempt_at > now()
            """, [TriggerConfig.oneOffName])
        return try result.decodeIfPresent(Double.self, row: 0, column: 0).map { Date(timeIntervalSince1970: $0) }
    }

    /// Keeps the tick history bounded: ticks older than `days` go, but never a trigger's
    /// newest, which is where a scheduler resumes after every worker was down.
    func pruneTicks(olderThanDays days: Int) throws(PGError) -> Int {
        let result = try connection.query(
            """
            WITH gone AS (
                DELETE FROM herald.cron_ticks c
                WHERE c.scheduled_time < now() - make_interval(days => $1::int)
                  AND c.scheduled_time < (SELECT max(n.scheduled_time) FROM herald.cron_ticks n
                                          WHERE n.trigger_name = c.trigger_name)
                RETURNING 1)
            SELECT count(*) FROM gone
            """, [String(days)])
        return try result.decode(Int.self, row: 0, column: 0)
    }
}
