/// Deletes finished events (and, in the same statement, their invocation rows) older than a cutoff, in
/// batches small enough that no lock is held for long and the worker's claims never wait.
public struct Retention {
    public struct Report: Sendable, Equatable {
        public var events = 0
        public var invocations = 0

        public init(events: Int = 0, invocations: Int = 0) {
            self.events = events
            self.invocations = invocations
        }
    }

    public static let batchSize = 5000

    public let connection: PGConnection

    public init(connection: PGConnection) {
        self.connection = connection
    }

    /// The finished statuses a cleanup may delete; never "pending".
    public enum Scope: Sendable {
        case delivered, failed, deliveredAndFailed

        var literal: String {
            switch self {
            case .delivered: PGArray.literal(["delivered"])
            case .failed: PGArray.literal(["failed"])
            case .deliveredAndFailed: PGArray.literal(["delivered", "failed"])
            }
        }
    }

    /// What a cleanup would delete.
    public func preview(olderThanSeconds: Int, scope: Scope) throws -> Report {
        let result = try connection.query(
            """
            WITH doomed AS (
                SELECT id FROM herald.event_log
                WHERE status = ANY ($1::text[]) AND finished_at < now() - make_interval(secs => $2::int))
            SELECT (SELECT count(*) FROM doomed),
                   (SELECT count(*) FROM herald.invocation_log i JOIN doomed ON i.event_id = doomed.id)
            """, [scope.literal, String(olderThanSeconds)])
        return Report(
            events: try result.decode(Int.self, row: 0, column: 0),
            invocations: try result.decode(Int.self, row: 0, column: 1))
    }

    /// Deletes in batches of `batchSize` (each its own short transaction) until none is left.
    /// Pending events are never deleted. With `trigger`, only that trigger's events (Hasura's
    /// per-trigger `cleanup_config`).
    public func run(
        olderThanSeconds: Int, scope: Scope, trigger: String? = nil, batchSize: Int = Retention.batchSize
    ) throws -> Report {
        var report = Report()
        while true {
            let result = try connection.query(
                """
                WITH doomed AS (
                    SELECT id FROM herald.event_log
                    WHERE status = ANY ($1::text[]) AND finished_at < now() - make_interval(secs => $2::int)
                      AND ($4::text IS NULL OR trigger_name = $4)
                    ORDER BY finished_at LIMIT $3::int
                    FOR UPDATE SKIP LOCKED),
                -- Attempt rows have no foreign key (schema version 13): they go with their event.
                invocations AS (
                    DELETE FROM herald.invocation_log i USING doomed WHERE i.event_id = doomed.id RETURNING 1),
                deleted AS (
                    DELETE FROM herald.event_log e USING doomed WHERE e.id = doomed.id RETURNING e.trigger_name, e.xid),
                -- Streams learn what was deleted (a cursor that had not served it gets 410).
                horizon AS (\(StreamHorizon.recordSQL(from: "deleted")))
                SELECT (SELECT count(*) FROM deleted), (SELECT count(*) FROM invocations)
                """,
                [scope.literal, String(olderThanSeconds), String(batchSize), trigger])
            let events = try result.decode(Int.self, row: 0, column: 0)
            report.events += events
            report.invocations += try result.decode(Int.self, row: 0, column: 1)
            if events < batchSize { return report }
        }
    }
}
