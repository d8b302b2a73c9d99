extension QueueStats {
    /// Above this many rows (by the planner's estimate) delivered events are no longer
    /// counted: a count reads the whole log (0.7 s at a million rows).
    public static let exactCountLimit = 100_000

    /// The queue's numbers at a cost set by the backlog, not by the log's size: for the
    /// worker's queue-depth gauges (every 10 s, per worker) and the console's overview (every
    /// page view). Up to `exactCountLimit` rows every count is exact (``read(_:configured:)``).
    /// Beyond it pending, in-flight and failed stay exact — they are read through their
    /// partial indexes and are what an operator acts on — while delivered becomes an estimate
    /// from the planner's statistics (rows × the trigger's share), marked as such. A
    /// partitioned log is estimated from its partitions' statistics.
    public static func readBounded(
        _ connection: PGConnection, configured: [String], exactCountLimit: Int = exactCountLimit
    ) throws -> QueueStats {
        let size = try connection.query(
            """
            SELECT coalesce(sum(c.reltuples) FILTER (WHERE c.reltuples > 0), 0)::bigint FROM pg_catalog.pg_class c
            WHERE c.relkind = 'r'
              AND (c.oid = 'herald.event_log'::regclass
                   OR c.oid IN (SELECT inhrelid FROM pg_catalog.pg_inherits WHERE inhparent = 'herald.event_log'::regclass))
            """)
        let rows = try size.decode(Int.self, row: 0, column: 0)
        guard rows >= exactCountLimit else { return try read(connection, configured: configured) }
        var byName: [String: Trigger] = [:]
        for name in configured { byName[name] = Trigger(trigger: name) }
        let pending = try connection.query(
            """
            SELECT trigger_name,
                   count(*) FILTER (WHERE NOT (locked_by IS NOT NULL AND next_attempt_at > now())),
                   count(*) FILTER (WHERE locked_by IS NOT NULL AND next_attempt_at > now()),
                   extract(epoch FROM now() - min(created_at))
            FROM herald.event_log WHERE status = 'pending' GROUP BY trigger_name
            """)
        for row in 0..<pending.rowCount {
            let name = try pending.decode(String.self, row: row, column: 0)
            var trigger = byName[name] ?? Trigger(trigger: name)
            trigger.pending = try pending.decode(Int.self, row: row, column: 1)
            trigger.inFlight = try pending.decode(Int.self, row: row, column: 2)
            trigger.oldestPendingAgeSeconds = try pending.decode(Double.self, row: row, column: 3)
            byName[name] = trigger
        }
        let failed = try connection.query(
            "SELECT trigger_name, count(*) FROM herald.event_log WHERE status = 'failed' GROUP BY trigger_name")
        for row in 0..<failed.rowCount {
            let name = try failed.decode(String.self, row: row, column: 0)
            byName[name, default: Trigger(trigger: name)].failed = try failed.decode(Int.self, row: row, column: 1)
        }
        // Each table's own statistics, weighted by its row count: a partitioned log's parent
        // holds no rows, and its inherited statistics exist only once someone analyzes it.
        let shares = try connection.query(
            """
            SELECT m.value, sum(m.share * c.reltuples)::bigint
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_stats s
              ON s.schemaname = 'herald' AND s.tablename = c.relname AND s.attname = 'trigger_name' AND NOT s.inherited
            CROSS JOIN LATERAL unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS m(value, share)
            WHERE c.relkind = 'r' AND c.reltuples > 0
              AND (c.oid = 'herald.event_log'::regclass
                   OR c.oid IN (SELECT inhrelid FROM pg_catalog.pg_inherits WHERE inhparent = 'herald.event_log'::regclass))
            GROUP BY m.value
            """)
        for row in 0..<shares.rowCount {
            let name = try shares.decode(String.self, row: row, column: 0)
            var trigger = byName[name] ?? Trigger(trigger: name)
            let total = try shares.decode(Int.self, row: row, column: 1)
            trigger.delivered = max(0, total - trigger.pending - trigger.inFlight - trigger.failed)
            trigger.deliveredIsEstimate = true
            byName[name] = trigger
        }
        try readFailures(connection, into: &byName)
        try readBlockedKeys(connection, into: &byName)
        return QueueStats(triggers: byName.values.sorted { $0.trigger < $1.trigger })
    }
}
