import Foundation

/// What `migrate-from-hasura` moved of Hasura's scheduled triggers.
public struct HasuraScheduledMoveReport: Sendable, Equatable {
    /// Pending cron events (undelivered past ticks and the future ticks Hasura had made)
    /// moved per cron trigger.
    public var cronTicks: [String: Int] = [:]
    /// Pending cron events of cron triggers this configuration does not name: left to Hasura.
    public var cronLeftInHasura: [String: Int] = [:]
    public var oneOffEvents = 0
    /// False when the database has no scheduled-trigger catalog (Hasura keeps it in its
    /// metadata database, which may be another one).
    public var catalogFound = false

    var summary: [String] {
        guard catalogFound else {
            return ["no hdb_catalog.hdb_cron_events here: Hasura's scheduled events live in its metadata database; run migrate-from-hasura against that database too if it is another one"]
        }
        var lines = ["moved \(cronTicks.values.reduce(0, +)) pending Hasura cron events and \(oneOffEvents) one-off scheduled events (same ids, same tries)"]
        lines += cronTicks.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value)" }
        for (trigger, count) in cronLeftInHasura.sorted(by: { $0.key < $1.key }) {
            lines.append("left \(count) pending events of cron trigger \(trigger) in hdb_catalog.hdb_cron_events: it is not in this configuration")
        }
        return lines
    }
}

/// Moves Hasura's pending scheduled work into Herald's log, inside the migration's
/// transaction: cron events of the configured cron triggers (keeping Hasura's ids) with
/// their ticks recorded in `herald.cron_ticks` — so Herald's scheduler neither repeats a
/// tick Hasura had made nor skips one — and every pending one-off event.
///
/// Both Hasura tables are locked against writes first (a `create_scheduled_event` waits for
/// the commit), so every scheduled event is either moved or made after the switch. Moved
/// rows are marked `dead` in Hasura's catalog: a status Hasura never fetches again, while its
/// invocation history stays.
struct HasuraScheduledMigration {
    let config: HeraldConfig
    let environment: [String: String]

    func run(_ connection: PGConnection) throws -> HasuraScheduledMoveReport {
        var report = HasuraScheduledMoveReport()
        let found = try connection.query(
            "SELECT to_regclass('hdb_catalog.hdb_cron_events') IS NOT NULL AND to_regclass('hdb_catalog.hdb_scheduled_events') IS NOT NULL")
        guard try found.decode(Bool.self, row: 0, column: 0) else { return report }
        report.catalogFound = true
        try connection.execute(
            script: "LOCK TABLE hdb_catalog.hdb_cron_events, hdb_catalog.hdb_scheduled_events IN EXCLUSIVE MODE")
        let names = PGArray.literal(config.cronTriggers.map(\.name))
        let busy = try connection.query(
            """
            SELECT (SELECT count(*) FROM hdb_catalog.hdb_cron_events WHERE status = 'locked' AND trigger_name = ANY ($1::text[]))
                 + (SELECT count(*) FROM hdb_catalog.hdb_scheduled_events WHERE status = 'locked')
            """, [names])
        let count = try busy.decode(Int.self, row: 0, column: 0)
        if count > 0 {
            throw MigrationError(
                code: .hasuraStillDelivering,
                message: "\(count) Hasura scheduled events are being delivered by Hasura right now (status locked): stop Hasura, wait for its deliveries to finish, and run again; nothing was changed")
        }
        report.cronTicks = try counts(connection.query(Self.moveCronEventsSQL, [names]))
        // Where Herald's scheduler resumes: after the newest tick Hasura made of each trigger
        // (delivered, failed or just moved), so no tick is made twice and none is skipped.
        try connection.query(
            """
            INSERT INTO herald.cron_ticks (trigger_name, scheduled_time, outcome)
            SELECT trigger_name, max(scheduled_time), 'created' FROM hdb_catalog.hdb_cron_events
            WHERE trigger_name = ANY ($1::text[]) GROUP BY trigger_name
            ON CONFLICT DO NOTHING
            """, [names])
        report.cronLeftInHasura = try counts(
            connection.query(
                """
                SELECT trigger_name, count(*) FROM hdb_catalog.hdb_cron_events
                WHERE status = 'scheduled' AND NOT (trigger_name = ANY ($1::text[])) GROUP BY trigger_name
                """, [names]))
        report.oneOffEvents = try moveOneOffEvents(connection)
        return report
    }

    /// Cron events still to send (`scheduled`: future ticks, and past ones not yet delivered
    /// or retried) become Herald events of the same trigger, id, tries and due time.
    static let moveCronEventsSQL = """
        WITH moved AS (
            UPDATE hdb_catalog.hdb_cron_events SET status = 'dead'
            WHERE status = 'scheduled' AND trigger_name = ANY ($1::text[])
            RETURNING id, trigger_name, scheduled_time, tries, created_at, next_retry_at),
        ticks AS (
            INSERT INTO herald.cron_ticks (trigger_name, scheduled_time, outcome)
            SELECT trigger_name, scheduled_time, 'created' FROM moved
            ON CONFLICT DO NOTHING),
        inserted AS (
            INSERT INTO herald.event_log
                (trigger_name, schema_name, table_name, payload, tries, created_at, next_attempt_at, imported_id)
            SELECT trigger_name, 'herald', 'cron_triggers',
                   jsonb_build_object('scheduled_time', herald.scheduled_time_text(scheduled_time)), tries,
                   coalesce(created_at::timestamptz, now()), coalesce(next_retry_at, scheduled_time), id::uuid
            FROM moved ORDER BY scheduled_time
            ON CONFLICT (imported_id) WHERE imported_id IS NOT NULL DO NOTHING
            RETURNING trigger_name)
        SELECT trigger_name, count(*) FROM inserted GROUP BY trigger_name
        """

    /// One-off events keep their webhook, headers (a `value_from_env` is still read by the
    /// worker at delivery, as Hasura reads it), retry settings, payload and comment. A webhook
    /// Hasura read from the environment (`{"from_env": NAME}`) is read here, from the
    /// migrating process's environment.
    private func moveOneOffEvents(_ connection: PGConnection) throws -> Int {
        let variables = try connection.query(
            """
            SELECT DISTINCT webhook_conf ->> 'from_env' FROM hdb_catalog.hdb_scheduled_events
            WHERE status = 'scheduled' AND json_typeof(webhook_conf) = 'object'
            """)
        var resolved: [String: String] = [:]
        for row in 0..<variables.rowCount {
            guard let name = try variables.decodeIfPresent(String.self, row: row, column: 0) else {
                throw MigrationError(
                    code: .unsupportedScheduledEvent,
                    message: "a pending Hasura one-off event has a webhook_conf Herald cannot read (neither a URL nor {from_env: NAME}); nothing was changed")
            }
            guard let value = environment[name], !value.isEmpty else {
                throw MigrationError(
                    code: .unsupportedScheduledEvent,
                    message: "pending Hasura one-off events take their webhook from environment variable \(name), which is not set here; set it and run again; nothing was changed")
            }
            resolved[name] = value
        }
        let result = try connection.query(
            """
            WITH env AS (
                SELECT * FROM unnest($1::text[], $2::text[]) AS e(name, value)),
            moved AS (
                UPDATE hdb_catalog.hdb_scheduled_events SET status = 'dead'
                WHERE status = 'scheduled'
                RETURNING id, webhook_conf, scheduled_time, retry_conf, payload, header_conf, tries, created_at,
                          next_retry_at, comment),
            inserted AS (
                INSERT INTO herald.event_log
                    (trigger_name, schema_name, table_name, payload, tries, created_at, next_attempt_at, imported_id)
                SELECT '@scheduled', 'herald', 'scheduled_events',
                       jsonb_build_object(
                           'scheduled_time', herald.scheduled_time_text(m.scheduled_time),
                           'payload', m.payload::jsonb, 'comment', m.comment,
                           'webhook', CASE WHEN json_typeof(m.webhook_conf) = 'string' THEN m.webhook_conf #>> '{}'
                                           ELSE (SELECT value FROM env WHERE name = m.webhook_conf ->> 'from_env') END,
                           'headers', coalesce(m.header_conf::jsonb, '[]'),
                           'retry_conf', coalesce(m.retry_conf::jsonb, '{}')),
                       m.tries, coalesce(m.created_at::timestamptz, now()), coalesce(m.next_retry_at, m.scheduled_time),
                       m.id::uuid
                FROM moved m ORDER BY m.scheduled_time
                ON CONFLICT (imported_id) WHERE imported_id IS NOT NULL DO NOTHING
                RETURNING 1)
            SELECT count(*) FROM inserted
            """, [PGArray.literal(Array(resolved.keys)), PGArray.literal(resolved.keys.map { resolved[$0] ?? "" })])
        return try result.decode(Int.self, row: 0, column: 0)
    }

    private func counts(_ result: PGResult) throws(PGError) -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in 0..<result.rowCount {
            counts[try result.decode(String.self, row: row, column: 0)] =
                try result.decode(Int.self, row: row, column: 1)
        }
        return counts
    }
}
