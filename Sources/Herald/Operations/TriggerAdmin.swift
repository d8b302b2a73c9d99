import Foundation

/// `herald disable-trigger`, `enable-trigger` and `triggers`: trigger state in
/// `herald.trigger_state`, which every worker's claim honours.
public struct TriggerAdmin {
    public let connection: PGConnection

    public init(connection: PGConnection) {
        self.connection = connection
    }

    /// One trigger as `herald triggers` shows it.
    public struct Row: Sendable, Encodable, Equatable {
        public var trigger: String
        public var enabled: Bool
        public var reason: String?
        public var changedBy: String?
        public var changedAt: String?
        /// As last reported by a worker: closed, open or half_open.
        public var circuit: String
        public var circuitWorker: String?
        public var rateLimit: String?
        public var circuitBreaker: String
        public var pending: Int
        /// Whether its capture triggers are in the database as configured: installed,
        /// not_installed, outdated, table_missing, or manual only (``TriggerDrift``).
        public var capture: String
        /// How events leave: `webhook` (one per request), `batch of N` (`batch:`) or `pull by CONSUMER`.
        public var delivery: String

        enum CodingKeys: String, CodingKey {
            case trigger, enabled, reason, circuit, pending, capture, delivery
            case changedBy = "changed_by"
            case changedAt = "changed_at"
            case circuitWorker = "circuit_worker"
            case rateLimit = "rate_limit"
            case circuitBreaker = "circuit_breaker"
        }
    }

    /// Disables or enables a trigger and wakes every worker (NOTIFY) so it takes effect at
    /// once. Returns false when the trigger was already in that state.
    @discardableResult
    public func setEnabled(_ trigger: String, enabled: Bool, reason: String?, by: String) throws -> Bool {
        try connection.transaction {
            let current = try connection.query(
                "SELECT enabled FROM herald.trigger_state WHERE trigger_name = $1 FOR UPDATE", [trigger])
            let wasEnabled = try current.rowCount == 0 || current.decode(Bool.self, row: 0, column: 0)
            guard wasEnabled != enabled else { return false }
            try EventStore(connection: connection).setTriggerEnabled(trigger, enabled: enabled, reason: reason, by: by)
            try connection.query("SELECT pg_notify($1, $2)", [Claimer.channel, Claimer.stateChangedPayload])
            return true
        }
    }

    /// Every configured trigger with its state, pending count and whether its capture
    /// triggers are installed as configured (`drift`, read by ``TriggerInstaller/drift(_:)``).
    public func list(_ config: HeraldConfig, drift: TriggerDrift) throws -> [Row] {
        let states = try connection.query(
            """
            SELECT trigger_name, enabled, reason, changed_by,
                   to_char(changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), circuit_state, circuit_worker
            FROM herald.trigger_state
            """)
        var byName:
            [String: (
                enabled: Bool, reason: String?, changedBy: String?, changedAt: String, circuit: String,
                circuitWorker: String?
            )] = [:]
        for row in 0..<states.rowCount {
            byName[try states.decode(String.self, row: row, column: 0)] = (
                try states.decode(Bool.self, row: row, column: 1),
                try states.decodeIfPresent(String.self, row: row, column: 2),
                try states.decodeIfPresent(String.self, row: row, column: 3),
                try states.decode(String.self, row: row, column: 4),
                try states.decode(String.self, row: row, column: 5),
                try states.decodeIfPresent(String.self, row: row, column: 6)
            )
        }
        let pending = try connection.query(
            """
            SELECT trigger_name, count(*) FROM herald.event_log
            WHERE status = 'pending' AND trigger_name = ANY ($1::text[]) GROUP BY trigger_name
            """, [PGArray.literal(config.triggers.map(\.name))])
        var pendingByName: [String: Int] = [:]
        for row in 0..<pending.rowCount {
            pendingByName[try pending.decode(String.self, row: row, column: 0)] =
                try pending.decode(Int.self, row: row, column: 1)
        }
        // A trigger without a state row was never disabled nor tripped: enabled, circuit closed.
        return config.triggers.map { trigger in
            let state = byName[trigger.name]
            let protection = trigger.protection
            return Row(
                trigger: trigger.name,
                enabled: state?.enabled ?? true,
                reason: state?.reason,
                changedBy: state?.changedBy,
                changedAt: state?.changedAt,
                circuit: state?.circuit ?? "closed",
                circuitWorker: state?.circuitWorker,
                rateLimit: protection.rateLimit.map {
                    "\(Self.number($0.perSecond))/s burst \(Self.number($0.burst))\($0.shared ? " shared" : "")"
                },
                circuitBreaker: protection.circuitBreaker.map {
                    "ratio \(Self.number($0.failureRatio)), min \($0.minimumRequests), window \($0.windowSeconds)s, open \($0.openSeconds)s"
                } ?? "off",
                pending: pendingByName[trigger.name] ?? 0,
                capture: drift.capture(of: trigger),
                delivery: Self.delivery(of: trigger))
        }
    }

    /// How a trigger's events leave, as `herald triggers` and the console name it.
    public static func delivery(of trigger: TriggerConfig) -> String {
        if let consumer = trigger.pullConsumer { return "pull by \(consumer)" }
        guard let batch = trigger.batch, trigger.schedule == nil else { return "webhook" }
        return "batch of \(batch.maxEvents)"
    }

    private static func number(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }

    /// The table `herald triggers` prints.
    public static func table(_ rows: [Row]) -> String {
        let headers = ["trigger", "state", "capture", "delivery", "circuit", "pending", "rate limit", "reason"]
        let cells = rows.map { row in
            [
                row.trigger, row.enabled ? "enabled" : "disabled", row.capture, row.delivery, row.circuit,
                String(row.pending),
                row.rateLimit ?? "-", row.enabled ? "" : (row.reason ?? ""),
            ]
        }
        let widths = headers.indices.map { column in
            ([headers[column]] + cells.map { $0[column] }).map(\.count).max() ?? 0
        }
        func line(_ values: [String]) -> String {
            zip(values, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        return ([line(headers)] + cells.map(line)).joined(separator: "\n")
    }
}
