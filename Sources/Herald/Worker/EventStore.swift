import Foundation

/// Every statement the worker runs against `herald.event_log`, in one place, on a
/// connection owned by the calling thread.
public struct EventStore {
    public let connection: PGConnection

    public init(connection: PGConnection) {
        self.connection = connection
    }

    /// Settings of the worker's own sessions (claimer, recorder).
    ///
    /// - Asynchronous commit: losing the last few hundred milliseconds of claims and
    ///   outcomes in a database crash only means those events are delivered again after
    ///   their lease — the at-least-once contract already allows that — while waiting for a
    ///   WAL flush per claim and per flush halved the drain rate. The application's own
    ///   transactions (and the captured events) keep the database's durable default.
    /// - A statement timeout: a statement stuck behind a lock (say an ALTER TABLE on the
    ///   log) becomes an error the loop backs off from, instead of a thread that never
    ///   returns; the loops keep turning and the watchdog keeps its meaning.
    /// - `application_name` says which part of the worker the connection serves
    ///   (``WorkerSession``), so `pg_stat_activity` and the server's logs tell the claimer's
    ///   session from the recorder's.
    /// - The claimer's session keeps one generic plan per claim statement
    ///   (`plan_cache_mode = force_generic_plan`). Left to choose, PostgreSQL planned every
    ///   claim afresh with its parameters, estimating the generic plan dearer: 0.2 ms per
    ///   claim. Measured with the generic plans (scripts/bench, paired against the same build):
    ///   the claim's execution also fell (16.4 against 21.6 µs per event), the drain rose 8%,
    ///   and ordered claims over 1,000 keys and over 10 hot keys were faster too.
    public func prepareWorkerSession(_ role: WorkerSession) throws(PGError) {
        let planning = role == .claimer ? "SET plan_cache_mode = force_generic_plan; " : ""
        try connection.execute(
            script: "SET synchronous_commit = off; SET statement_timeout = '\(Self.statementTimeoutSeconds)s'; "
                + planning + "SET application_name = '\(role.rawValue)'")
    }

    /// The worker's own database sessions, by what they do (their `application_name`).
    public enum WorkerSession: String, Sendable {
        /// Claims events, listens for NOTIFY, writes trigger state.
        case claimer = "herald-claimer"
        /// Writes outcomes and attempt rows.
        case recorder = "herald-recorder"
    }

    /// Longest any worker statement may run.
    static let statementTimeoutSeconds = 20

    /// The secret payload ids are derived from (see ``EventID``).
    public func eventIDKey() throws -> EventIDKey {
        let result = try connection.query("SELECT encode(id_key, 'hex'), event_id_v2_from FROM herald.installation")
        guard result.rowCount == 1, let hex = result[0, 0], hex.count == 64 else {
            throw PGError(code: .unexpectedResult, message: "herald.installation is empty: run herald install-triggers")
        }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return EventIDKey(bytes: bytes, v2From: try result.decode(Int64.self, row: 0, column: 1))
    }

    /// Leases due events: up to `limits[trigger]` of each trigger.
    ///
    /// - Events without a key: one LATERAL subquery per trigger walks
    ///   `event_log_pending_trigger_due` (pending, unkeyed, by trigger then due time), oldest
    ///   due first: each trigger's quota costs an index range scan, and a backlog of one
    ///   trigger is never read to find another's events. Delivered and failed rows are not in
    ///   the index however many there are.
    /// - Events with a key (ordered triggers): only heads are claimed, the lowest position
    ///   among the key's pending events, and only when due (a head in flight carries its
    ///   lease as due time; a blocked one, infinity). A recursive walk over
    ///   `event_log_pending_key_heads` visits one key per index probe, starting after the
    ///   key in `after[trigger]` so successive claims go round the keys; events waiting
    ///   behind a head are never read. It stops as soon as the quota is met.
    /// - SKIP LOCKED lets several workers claim at once without waiting on each other. A
    ///   head another worker has just taken is re-checked after the lock (due no more) and
    ///   skipped; the event behind it is not a head in any snapshot that saw the head pending.
    /// - `= ANY (ARRAY(…))`, not `IN (…)`: with IN the planner joins the candidates against a
    ///   sequential scan of the whole log (28 ms per claim at 100k rows instead of 2 ms).
    /// - The lease is the new next_attempt_at: if this worker dies, the event becomes due
    ///   again when the lease expires and any worker picks it up; no sweeper is needed.
    /// - `locked_at` doubles as the lease token (microseconds since the epoch, returned): an
    ///   outcome is applied only while the row still carries the token of the claim it
    ///   answers, so a late outcome never overwrites a newer lease's bookkeeping.
    /// - Events of triggers this worker does not know stay pending (never dropped), and so do
    ///   those of disabled triggers (`herald.trigger_state`), whichever worker disabled them.
    ///
    /// `keyed`: triggers that may have keyed events (ordered in the configuration, or found
    /// with keyed pending events). A claim for none of them uses ``unkeyedClaimSQL``, which
    /// PostgreSQL plans in half the time: every claim is planned afresh, and at a hundred
    /// events a claim the planning of the key walk was a third of the claim's cost.
    public func claimBatch(
        limits: [String: Int], after: [String: String] = [:], keyed: Set<String> = [], workerID: String,
        leaseSeconds: Int, source: String = SourceConfig.defaultName
    ) throws(PGError) -> [ClaimedEvent] {
        let triggers = limits.keys.sorted()
        var parameters: [String?] = [
            PGArray.literal(triggers.map { String(limits[$0] ?? 0) }), workerID, String(leaseSeconds),
            PGArray.literal(triggers),
        ]
        let walksKeys = triggers.contains { keyed.contains($0) }
        if walksKeys { parameters.append(PGArray.literal(triggers.map { after[$0] ?? "" })) }
        let result = try connection.query(walksKeys ? Self.claimStatement : Self.unkeyedClaimStatement, parameters)
        return try result.rows { row throws(PGError) in try Self.decodeClaimed(result, row: row, source: source) }
    }

    /// One row of ``claimedColumns``, claimed from `source`. `triesCounted`: attempts the
    /// claim itself counted in `tries` (a pull consumer's receive), taken off.
    static func decodeClaimed(
        _ result: PGResult, row: Int, source: String = SourceConfig.defaultName, triesCounted: Int = 0
    ) throws(PGError) -> ClaimedEvent {
        ClaimedEvent(
            id: try result.decode(Int64.self, row: row, column: 0),
            triggerName: try result.decode(String.self, row: row, column: 1),
            table: TableName(
                schema: try result.decode(String.self, row: row, column: 2),
                name: try result.decode(String.self, row: row, column: 3)),
            payload: try result.decode(String.self, row: row, column: 4),
            tries: try result.decode(Int.self, row: row, column: 5) - triesCounted,
            createdAt: try result.decode(String.self, row: row, column: 6),
            createdAtEpoch: try result.decode(Double.self, row: row, column: 7),
            leaseToken: try result.decode(Int64.self, row: row, column: 8),
            importedID: try result.decodeIfPresent(String.self, row: row, column: 9),
            orderingKey: try result.decodeIfPresent(String.self, row: row, column: 10),
            source: source,
            attemptedBefore: try result.decode(Bool.self, row: row, column: 11))
    }

    /// The claims, prepared once per session: parsed once, and planned once (the claimer's
    /// session forces generic plans: see ``prepareWorkerSession(_:)``).
    static let claimStatement = PGStatement(name: "herald_claim", sql: claimSQL)
    static let unkeyedClaimStatement = PGStatement(name: "herald_claim_unkeyed", sql: unkeyedClaimSQL)

    static let claimSQL = """
        UPDATE herald.event_log e
        SET \(leaseSQL)
        WHERE e.id = ANY (ARRAY(
            SELECT picked.id
            FROM unnest($4::text[], $1::int[], $5::text[]) AS quota(trigger_name, n, after_key)
            CROSS JOIN LATERAL (
                SELECT unkeyed.id FROM (\(dueUnkeyedSQL(trigger: "quota.trigger_name", limit: "quota.n"))) unkeyed
                UNION ALL
                (\(keyedHeadsSQL))
                LIMIT quota.n) picked
            WHERE \(triggerEnabledSQL)))
        RETURNING \(claimedColumns)
        """

    /// ``claimSQL`` without the key walk, for triggers with no keyed events.
    static let unkeyedClaimSQL = """
        UPDATE herald.event_log e
        SET \(leaseSQL)
        WHERE e.id = ANY (ARRAY(
            SELECT due.id
            FROM unnest($4::text[], $1::int[]) AS quota(trigger_name, n)
            CROSS JOIN LATERAL (\(dueUnkeyedSQL(trigger: "quota.trigger_name", limit: "quota.n"))) due
            WHERE \(triggerEnabledSQL)))
        RETURNING \(claimedColumns)
        """

    /// What a claim sets: the lease is the new due time (see ``claimBatch``).
    private static let leaseSQL =
        "locked_at = now(), locked_by = $2, next_attempt_at = now() + make_interval(secs => $3::int)"

    /// Events of disabled triggers stay pending, whichever worker disabled them.
    private static let triggerEnabledSQL = """
        NOT EXISTS (SELECT FROM herald.trigger_state s
                                  WHERE s.trigger_name = quota.trigger_name AND NOT s.enabled)
        """

    /// The one subquery that finds a trigger's due events without a key, oldest due first,
    /// locked: a range scan of `event_log_pending_trigger_due` (both claims use it; a test
    /// checks its plan through ``claimCandidatesSQL``).
    static func dueUnkeyedSQL(trigger: String, limit: String) -> String {
        """
        SELECT id FROM herald.event_log
                WHERE status = 'pending' AND ordering_key IS NULL AND trigger_name = \(trigger)
                  AND next_attempt_at <= now()
                ORDER BY next_attempt_at
                LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
        """
    }

    /// What a claim returns of each event (see ``claimBatch``).
    static let claimedColumns = """
        e.id, e.trigger_name, e.schema_name, e.table_name, e.payload::text, e.tries,
                  to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                  extract(epoch FROM e.created_at), \(leaseTokenSQL("e")), e.imported_id::text, e.ordering_key,
                  e.last_error IS NOT NULL
        """

    /// Which of `triggers` have keyed pending events: one probe of the key-heads index each.
    /// The claimer asks about triggers not ordered in its configuration, whose events may
    /// still carry keys (captured before ordering was turned off, or by capture triggers not
    /// yet reinstalled), so those are claimed in order too.
    public func triggersWithKeyedEvents(_ triggers: [String]) throws(PGError) -> Set<String> {
        guard !triggers.isEmpty else { return [] }
        return Set(
            try connection.query(
                """
                SELECT t FROM unnest($1::text[]) AS t
                WHERE EXISTS (SELECT FROM herald.event_log
                              WHERE status = 'pending' AND ordering_key IS NOT NULL AND trigger_name = t)
                """, [PGArray.literal(triggers)]
            ).column(0).compactMap { $0 })
    }

    /// The due heads of a trigger's keys after `quota.after_key`, locked (see ``claimBatch``).
    static let keyedHeadsSQL = """
        WITH RECURSIVE heads(ordering_key, id) AS (
                    (SELECT h.ordering_key, h.id FROM herald.event_log h
                     WHERE h.status = 'pending' AND h.ordering_key IS NOT NULL
                       AND h.trigger_name = quota.trigger_name AND h.ordering_key > quota.after_key
                     ORDER BY h.ordering_key, coalesce(h.ordering_position, h.id) LIMIT 1)
                    UNION ALL
                    SELECT next.ordering_key, next.id FROM heads
                    CROSS JOIN LATERAL (
                        SELECT h.ordering_key, h.id FROM herald.event_log h
                        WHERE h.status = 'pending' AND h.ordering_key IS NOT NULL
                          AND h.trigger_name = quota.trigger_name AND h.ordering_key > heads.ordering_key
                        ORDER BY h.ordering_key, coalesce(h.ordering_position, h.id) LIMIT 1) next)
                SELECT locked.id FROM heads
                CROSS JOIN LATERAL (
                    SELECT x.id FROM herald.event_log x
                    WHERE x.id = heads.id AND x.status = 'pending' AND x.next_attempt_at <= now()
                    FOR UPDATE SKIP LOCKED) locked
        """

    /// The lease token of a row: its `locked_at` in whole microseconds since the epoch.
    static func leaseTokenSQL(_ alias: String) -> String {
        "(extract(epoch FROM \(alias).locked_at) * 1000000)::bigint"
    }

    /// One trigger's unkeyed subquery of ``claimSQL``, for checking its plan.
    static let claimCandidatesSQL = dueUnkeyedSQL(trigger: "$1", limit: "100")

    /// What ``record(_:workerID:)`` did.
    public struct Recorded: Sendable, Equatable {
        /// Events whose row the outcome updated (it still carried the claim's lease).
        public var applied: Set<Int64> = []
        /// Events that no longer exist (deleted while their delivery was in flight): their
        /// outcome is dropped, attempt row included.
        public var missingEvents: Set<Int64> = []
    }

    /// Writes a batch of outcomes in one transaction: one UPDATE for all events, one INSERT
    /// for all invocation rows. The UPDATE names the ids twice on purpose: `e.id = ANY ($1)`
    /// lets the planner fetch the rows through the primary key; joined only to the unnest it
    /// scanned the whole log per flush. The worker id is a column of the unnest, not a
    /// constant: as `e.locked_by = $7` the planner estimated the leased rows at one (most
    /// rows have no lock) and joined them to the unnest in a nested loop, n² comparisons
    /// that cost ~0.4 s a flush at a thousand outcomes; as a join column the estimate is n
    /// rows and the join a hash or merge (measured 42 ms → 4 ms at 300 outcomes).
    /// An event is updated only while it still carries the lease this outcome answers (same
    /// worker, same claim), so neither another worker nor this one re-claiming after an
    /// expired lease can have its newer bookkeeping overwritten.
    /// The attempt's invocation row is written either way (the request was made) as long as
    /// the event exists. Attempt rows have no foreign key (schema version 13: its check
    /// locked every event row again, a third of the flush's cost), so existence is settled
    /// here: the UPDATE has locked every event it matched against deletion; only outcomes it
    /// did not match (a lease taken over, an event deleted in flight; rare) are looked up,
    /// under a lock that holds off a concurrent delete until the attempt rows are in.
    @discardableResult
    public func record(_ outcomes: [DeliveryOutcome], workerID: String) throws -> Recorded {
        guard !outcomes.isEmpty else { return Recorded() }
        let ids = outcomes.map(\.event.id)
        let statuses: [String?] = outcomes.map { $0.decision.status }
        // A deferred attempt (the receiver disabled the trigger) does not count as a try.
        let tries: [Int64?] = outcomes.map { Int64($0.decision == .deferred ? $0.event.tries : $0.attempt) }
        let delays: [String?] = outcomes.map { Self.delayText($0.decision) }
        let codes: [Int64?] = outcomes.map { $0.statusCode.map(Int64.init) }
        let errors: [String?] = outcomes.map { $0.errorMessage.map { Self.storable($0, limit: 1000) } }
        let leases: [Int64?] = outcomes.map { $0.event.leaseToken }
        let blocked: [String?] = outcomes.map { $0.decision == .blocked ? "true" : "false" }
        let idArray = PGArray.literal(ids)
        return try connection.transaction {
            let updated = try connection.query(
                Self.recordOutcomesStatement,
                [
                    idArray, PGArray.literal(statuses), PGArray.literal(tries), PGArray.literal(delays),
                    PGArray.literal(codes), PGArray.literal(errors), workerID, PGArray.literal(leases),
                    PGArray.literal(blocked),
                ])
            var recorded = Recorded(
                applied: Set(try updated.rows { row throws(PGError) in try updated.decode(Int64.self, row: row, column: 0) }))
            let unmatched = Set(ids).subtracting(recorded.applied)
            if !unmatched.isEmpty {
                let existing = try connection.query(
                    "SELECT id FROM herald.event_log WHERE id = ANY ($1::bigint[]) FOR KEY SHARE",
                    [PGArray.literal(unmatched.sorted())])
                recorded.missingEvents = unmatched.subtracting(
                    try existing.rows { row throws(PGError) in try existing.decode(Int64.self, row: row, column: 0) })
            }
            let written = recorded.missingEvents.isEmpty
                ? outcomes : outcomes.filter { !recorded.missingEvents.contains($0.event.id) }
            if !written.isEmpty { try insertAttempts(written) }
            return recorded
        }
    }

    /// What ``record(_:workerID:)`` runs per flush, prepared once per session.
    static let recordOutcomesStatement = PGStatement(
        name: "herald_record_outcomes",
        sql: """
            UPDATE herald.event_log e
            SET status = u.status, tries = u.tries,
                next_attempt_at = CASE WHEN u.blocked THEN 'infinity'
                                       WHEN u.status = 'pending' THEN now() + make_interval(secs => u.delay)
                                       ELSE e.next_attempt_at END,
                blocked_at = CASE WHEN u.blocked THEN now() END,
                finished_at = CASE WHEN u.status = 'pending' THEN NULL ELSE now() END,
                locked_at = NULL, locked_by = NULL,
                last_status_code = u.code, last_error = u.error
            FROM unnest($1::bigint[], $2::text[], $3::int[], $4::float8[], $5::int[], $6::text[], $8::bigint[],
                        $9::bool[], array_fill($7::text, ARRAY[cardinality($1::bigint[])]))
                 AS u(id, status, tries, delay, code, error, lease, blocked, worker)
            WHERE e.id = ANY ($1::bigint[]) AND e.id = u.id AND e.locked_by = u.worker
              AND \(Self.leaseTokenSQL("e")) = u.lease
            RETURNING e.id
            """)

    /// One invocation row per outcome, in one statement. A batch's request headers and
    /// response body are stored once, on the first row of the batch in this flush (schema
    /// version 14); its other rows link to it by `batch_id`.
    private func insertAttempts(_ outcomes: [DeliveryOutcome]) throws(PGError) {
        var batchesSeen: Set<String> = []
        let carriesRequest = outcomes.map { outcome in outcome.batchID.map { batchesSeen.insert($0).inserted } ?? true }
        try connection.query(
            Self.insertAttemptsStatement,
            [
                PGArray.literal(outcomes.map(\.event.id)),
                PGArray.literal(outcomes.map { $0.event.triggerName }),
                PGArray.literal(outcomes.map { Int64?(Int64($0.attempt)) }),
                PGArray.literal(outcomes.map { $0.statusCode.map(Int64.init) }),
                PGArray.literal(outcomes.map { $0.errorClass }),
                PGArray.literal(outcomes.map { $0.errorMessage.map { Self.storable($0, limit: 1000) } }),
                PGArray.headerObjectsLiteral(zip(outcomes, carriesRequest).map { $1 ? $0.requestHeaders : [] }),
                PGArray.literal(zip(outcomes, carriesRequest).map { $1 ? $0.responseBody.map { Self.storable($0, limit: Int.max) } : nil }),
                PGArray.literal(outcomes.map { String($0.durationMilliseconds) }),
                PGArray.literal(outcomes.map(\.batchID)),
            ])
    }

    /// The attempt rows of a flush, prepared once per session.
    static let insertAttemptsStatement = PGStatement(
        name: "herald_insert_attempts",
        sql: """
            INSERT INTO herald.invocation_log
                (event_id, trigger_name, attempt, status_code, error_class, error_message,
                 request_headers, response_body, duration_ms, batch_id)
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::int[], $5::text[], $6::text[],
                                 $7::jsonb[], $8::text[], $9::float8[], $10::text[])
            """)

    private static func delayText(_ decision: RetryDecision) -> String? {
        switch decision {
        case .retry(let seconds): String(seconds)
        case .deferred: "0"
        case .delivered, .failed, .blocked: nil
        }
    }

    /// Gives back leases of events this worker claimed but did not send (their trigger's
    /// breaker opened or it was disabled): due at once, tries unchanged. Only rows still
    /// carrying the claim's lease token are touched.
    @discardableResult
    public func releaseUnsent(_ events: [ClaimedEvent], workerID: String) throws(PGError) -> Int {
        guard !events.isEmpty else { return 0 }
        let ids = PGArray.literal(events.map(\.id))
        return try connection.query(
            """
            UPDATE herald.event_log e SET locked_at = NULL, locked_by = NULL, next_attempt_at = now()
            FROM unnest($1::bigint[], $2::bigint[]) AS u(id, lease)
            WHERE e.id = ANY ($1::bigint[]) AND e.id = u.id AND e.status = 'pending' AND e.locked_by = $3
              AND \(Self.leaseTokenSQL("e")) = u.lease
            """, [ids, PGArray.literal(events.map(\.leaseToken)), workerID]
        ).affectedRows
    }

    /// Takes every slot of the wake gate in SHARE mode, so writers NOTIFY this session at
    /// commit (sql/017_wake_gate.sql); false, holding none, while a writer that did not
    /// notify is still committing.
    func armWakeGate() throws(PGError) -> Bool {
        let result = try connection.query("SELECT herald.wake_gate_arm()")
        return try result.decode(Bool.self, row: 0, column: 0)
    }

    /// Releases the wake gate's slots: writers stop notifying (unless another worker waits).
    func disarmWakeGate() throws(PGError) {
        try connection.query("SELECT herald.wake_gate_disarm()")
    }

    /// Triggers disabled in `herald.trigger_state`.
    public func disabledTriggers() throws(PGError) -> Set<String> {
        Set(try connection.query("SELECT trigger_name FROM herald.trigger_state WHERE NOT enabled").column(0).compactMap { $0 })
    }

    /// Records that a trigger is disabled (or enabled), why and by whom.
    public func setTriggerEnabled(_ trigger: String, enabled: Bool, reason: String?, by: String) throws(PGError) {
        try connection.query(
            """
            INSERT INTO herald.trigger_state (trigger_name, enabled, reason, changed_by)
            VALUES ($1, $2::boolean, $3, $4)
            ON CONFLICT (trigger_name) DO UPDATE
            SET enabled = excluded.enabled, reason = excluded.reason, changed_by = excluded.changed_by,
                changed_at = now()
            """, [trigger, enabled ? "true" : "false", reason, by])
    }

    /// Records a worker's circuit breaker state for `herald triggers`.
    public func setCircuitState(_ trigger: String, state: String, workerID: String) throws(PGError) {
        try connection.query(
            """
            INSERT INTO herald.trigger_state (trigger_name, circuit_state, circuit_changed_at, circuit_worker)
            VALUES ($1, $2, now(), $3)
            ON CONFLICT (trigger_name) DO UPDATE
            SET circuit_state = excluded.circuit_state, circuit_changed_at = now(), circuit_worker = excluded.circuit_worker
            """, [trigger, state, workerID])
    }

    /// Reserves up to `wanted` tokens of a shared rate limit in one statement: the bucket
    /// is refilled for the time since its last use (at most `burst`), then what it holds is
    /// handed out. A new bucket starts full. Returns how many tokens this worker got.
    public func reserveTokens(trigger: String, wanted: Int, perSecond: Double, burst: Double) throws(PGError) -> Int {
        let result = try connection.query(
            """
            INSERT INTO herald.rate_limit_bucket AS b (trigger_name, tokens, refilled_at, granted)
            VALUES ($1, $4::float8 - least($2::int, floor($4::float8)), now(), least($2::int, floor($4::float8)))
            ON CONFLICT (trigger_name) DO UPDATE
            SET granted = least($2::int, floor(least($4::float8,
                              b.tokens + extract(epoch FROM now() - b.refilled_at) * $3::float8))),
                tokens = least($4::float8, b.tokens + extract(epoch FROM now() - b.refilled_at) * $3::float8)
                         - least($2::int, floor(least($4::float8,
                              b.tokens + extract(epoch FROM now() - b.refilled_at) * $3::float8))),
                refilled_at = now()
            RETURNING granted
            """, [trigger, String(wanted), String(perSecond), String(burst)])
        return try result.decode(Int.self, row: 0, column: 0)
    }

    /// Gives back every lease this worker still holds (graceful shutdown): the events are
    /// due at once for any worker, with their tries unchanged.
    @discardableResult
    public func releaseLeases(workerID: String) throws -> Int {
        try connection.query(
            """
            UPDATE herald.event_log SET locked_at = NULL, locked_by = NULL, next_attempt_at = now()
            WHERE status = 'pending' AND locked_by = $1
            """, [workerID]
        ).affectedRows
    }

    /// PostgreSQL text cannot hold NUL; a receiver's bytes may contain it.
    static func storable(_ text: String, limit: Int) -> String {
        let cleaned = text.utf8.contains(0) ? text.replacingOccurrences(of: "\0", with: "\u{FFFD}") : text
        return cleaned.utf8.count > limit ? String(cleaned.prefix(limit)) : cleaned
    }
}
