import Foundation

/// The queue as the database sees it, per trigger: what `herald stats` prints.
public struct QueueStats: Sendable, Equatable, Encodable {
    public struct Trigger: Sendable, Equatable, Encodable {
        public var trigger: String
        public var pending = 0
        public var inFlight = 0
        public var delivered = 0
        public var failed = 0
        public var oldestPendingAgeSeconds: Double?
        public var failuresLastHour = 0
        public var lastError: LastError?
        /// Set when `delivered` is an estimate from the planner's statistics (the console's
        /// overview of a very large log), not a count.
        public var deliveredIsEstimate = false
        /// Keys of an ordered trigger held by a head that failed for good (`on_failure: block`).
        public var blockedKeys = 0
        public var oldestBlockedAgeSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case trigger, pending, delivered, failed
            case blockedKeys = "blocked_keys"
            case oldestBlockedAgeSeconds = "oldest_blocked_age_seconds"
            case inFlight = "in_flight"
            case oldestPendingAgeSeconds = "oldest_pending_age_seconds"
            case failuresLastHour = "failures_last_hour"
            case lastError = "last_error"
        }
    }

    public struct LastError: Sendable, Equatable, Encodable {
        public var at: String
        public var statusCode: Int?
        public var errorClass: String?
        public var message: String?
        /// The start of the response body, on one line.
        public var responseExcerpt: String?

        enum CodingKeys: String, CodingKey {
            case at, message
            case statusCode = "status_code"
            case errorClass = "error_class"
            case responseExcerpt = "response_excerpt"
        }

        /// `HTTP 500: <body excerpt>` or `timeout: <message>`, never the status twice.
        public var text: String {
            let what = statusCode.map { "HTTP \($0)" } ?? errorClass ?? "error"
            var details: [String] = []
            if let message, !message.isEmpty, message != what { details.append(message) }
            if let responseExcerpt, !responseExcerpt.isEmpty { details.append("response: \(responseExcerpt)") }
            return details.isEmpty ? what : "\(what): \(details.joined(separator: "; "))"
        }
    }

    /// Characters of the response body shown with the last error.
    static let excerptLength = 160

    public var triggers: [Trigger]

    /// Reads the counts; configured triggers with no events are listed with zeros.
    public static func read(_ connection: PGConnection, configured: [String]) throws -> QueueStats {
        var byName: [String: Trigger] = [:]
        for name in configured { byName[name] = Trigger(trigger: name) }
        try readCounts(connection, into: &byName)
        try readFailures(connection, into: &byName)
        try readBlockedKeys(connection, into: &byName)
        return QueueStats(triggers: byName.values.sorted { $0.trigger < $1.trigger })
    }

    /// Pending, in flight, delivered and failed per trigger: one pass over the whole log.
    static func readCounts(_ connection: PGConnection, into byName: inout [String: Trigger]) throws {
        let counts = try connection.query(
            """
            SELECT trigger_name,
                   count(*) FILTER (WHERE status = 'pending' AND NOT (locked_by IS NOT NULL AND next_attempt_at > now())),
                   count(*) FILTER (WHERE status = 'pending' AND locked_by IS NOT NULL AND next_attempt_at > now()),
                   count(*) FILTER (WHERE status = 'delivered'),
                   count(*) FILTER (WHERE status = 'failed'),
                   extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending'))
            FROM herald.event_log GROUP BY trigger_name
            """)
        for row in 0..<counts.rowCount {
            let name = try counts.decode(String.self, row: row, column: 0)
            var trigger = byName[name] ?? Trigger(trigger: name)
            trigger.pending = try counts.decode(Int.self, row: row, column: 1)
            trigger.inFlight = try counts.decode(Int.self, row: row, column: 2)
            trigger.delivered = try counts.decode(Int.self, row: row, column: 3)
            trigger.failed = try counts.decode(Int.self, row: row, column: 4)
            trigger.oldestPendingAgeSeconds = try counts.decodeIfPresent(Double.self, row: row, column: 5)
            byName[name] = trigger
        }
    }

    /// Blocked keys per trigger, from their small partial index. Each blocked key has exactly
    /// one blocked event (its head).
    static func readBlockedKeys(_ connection: PGConnection, into byName: inout [String: Trigger]) throws {
        let blocked = try connection.query(
            """
            SELECT trigger_name, count(*), extract(epoch FROM now() - min(blocked_at)) FROM herald.event_log
            WHERE blocked_at IS NOT NULL AND status = 'pending' GROUP BY trigger_name
            """)
        for row in 0..<blocked.rowCount {
            let name = try blocked.decode(String.self, row: row, column: 0)
            var trigger = byName[name] ?? Trigger(trigger: name)
            trigger.blockedKeys = try blocked.decode(Int.self, row: row, column: 1)
            trigger.oldestBlockedAgeSeconds = try blocked.decode(Double.self, row: row, column: 2)
            byName[name] = trigger
        }
    }

    /// Failures in the last hour and the last error, per trigger (recent invocations only).
    static func readFailures(_ connection: PGConnection, into byName: inout [String: Trigger]) throws {
        let failures = try connection.query(
            """
            SELECT trigger_name, count(*) FROM herald.invocation_log
            WHERE created_at > now() - interval '1 hour' AND error_class IS NOT NULL GROUP BY trigger_name
            """)
        for row in 0..<failures.rowCount {
            byName[try failures.decode(String.self, row: row, column: 0)]?.failuresLastHour =
                try failures.decode(Int.self, row: row, column: 1)
        }
        // One index probe per trigger (invocation_log_errors, newest first) instead of a sort
        // of every error row ever recorded.
        let lastErrors = try connection.query(
            """
            SELECT t.name, to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), e.status_code,
                   e.error_class, e.error_message, left(regexp_replace(e.response_body, '\\s+', ' ', 'g'), $2::int)
            FROM unnest($1::text[]) AS t(name)
            CROSS JOIN LATERAL (
                SELECT created_at, status_code, error_class, error_message, response_body FROM herald.invocation_log
                WHERE trigger_name = t.name AND error_class IS NOT NULL ORDER BY id DESC LIMIT 1) e
            """, [PGArray.literal(byName.keys.sorted()), String(excerptLength)])
        for row in 0..<lastErrors.rowCount {
            byName[try lastErrors.decode(String.self, row: row, column: 0)]?.lastError = LastError(
                at: try lastErrors.decode(String.self, row: row, column: 1),
                statusCode: try lastErrors.decodeIfPresent(Int.self, row: row, column: 2),
                errorClass: try lastErrors.decode(String.self, row: row, column: 3),
                message: try lastErrors.decodeIfPresent(String.self, row: row, column: 4),
                responseExcerpt: try lastErrors.decodeIfPresent(String.self, row: row, column: 5))
        }
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// A fixed-width table for terminals.
    public var table: String {
        // As wide as the longest name: a cut name could be another trigger's.
        let width = max(24, (triggers.map(\.trigger.count).max() ?? 0) + 2)
        var lines = [
            "trigger".padding(toLength: width, withPad: " ", startingAt: 0)
                + ["pending", "in_flight", "delivered", "failed", "oldest_pending", "failed_tries_1h"].map { $0.leftPadded(15) }
                .joined()
        ]
        for trigger in triggers {
            let age = trigger.oldestPendingAgeSeconds.map { String(format: "%.1fs", $0) } ?? "-"
            lines.append(
                trigger.trigger.padding(toLength: width, withPad: " ", startingAt: 0)
                    + [
                        String(trigger.pending), String(trigger.inFlight), String(trigger.delivered),
                        String(trigger.failed), age, String(trigger.failuresLastHour),
                    ].map { $0.leftPadded(15) }.joined())
        }
        // The columns count events, except the last, which counts attempts (an event retried
        // three times fails three times): said once under the table, not in every header.
        if !triggers.isEmpty {
            lines.append("(failed_tries_1h counts failed attempts in the last hour, retries included; the other columns count events)")
        }
        for trigger in triggers where trigger.blockedKeys > 0 {
            let age = trigger.oldestBlockedAgeSeconds.map { String(format: "%.0fs", $0) } ?? "-"
            lines.append(
                "blocked keys \(trigger.trigger): \(trigger.blockedKeys), oldest blocked \(age) ago"
                    + " (herald redeliver-event ID retries the head, herald skip-event ID releases the key)")
        }
        for trigger in triggers {
            guard let error = trigger.lastError else { continue }
            lines.append("last error \(trigger.trigger): \(error.at) \(error.text)")
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? " " + self : String(repeating: " ", count: width - count) + self
    }
}
