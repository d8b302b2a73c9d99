import Foundation

/// Every statement the worker runs against `herald.event_log`, in one place, on a
/// connection owned by the calling thread.
public struct EventStore {
    public let connection: PGConnection

    public init(connection: PGConnection) {
        self.connection = connection
    }

    /// Claims and outcomes are written with asynchronous commit on the worker's own
    /// connections. Losing the last few hundred milliseconds of them in a database crash only
    /// means those events are delivered again after their lease — the at-least-once contract
    /// already allows that — while waiting for a WAL flush per claim and per flush halved the
    /// drain rate. The application's own transactions (and the captured events) keep the
    /// database's durable default.
    public func useAsynchronousCommit() throws {
        try connection.execute(script: "SET synchronous_commit = off")
    }

    /// The id payload UUIDs are built from (see ``EventID``).
    public func installationID() throws -> UUID {
        let result = try connection.query("SELECT id::text FROM herald.installation")
        guard let text = result[0, 0], let id = UUID(uuidString: text) else {
            throw PGError(code: .unexpectedResult, message: "herald.installation is empty: run herald install-triggers")
        }
        return id
    }

    /// Leases up to `limit` due events of the given triggers.
    ///
    /// - The subquery walks `event_log_pending_due` (status = 'pending', by next_attempt_at),
    ///   so delivered and failed rows are never read however many there are.
    /// - SKIP LOCKED lets several workers claim at once without waiting on each other.
    /// - The lease is the new next_attempt_at: if this worker dies, the event becomes due
    ///   again when the lease expires and any worker picks it up; no sweeper is needed.
    /// - Events of triggers this worker does not know stay pending (never dropped).
    public func claimBatch(limit: Int, workerID: String, leaseSeconds: Int, triggers: [String]) throws
        -> [ClaimedEvent]
    {
        let result = try connection.query(Self.claimSQL, [
            String(limit), workerID, String(leaseSeconds), PGArray.literal(triggers.map { $0 }),
        ])
        return (0..<result.rowCount).map { row in
            ClaimedEvent(
                id: Int64(result[row, 0] ?? "") ?? 0,
                triggerName: result[row, 1] ?? "",
                table: TableName(schema: result[row, 2] ?? "", name: result[row, 3] ?? ""),
                payload: result[row, 4] ?? "null",
                tries: Int(result[row, 5] ?? "") ?? 0,
                createdAt: result[row, 6] ?? "",
                createdAtEpoch: Double(result[row, 7] ?? "") ?? 0)
        }
    }

    static let claimSQL = """
        UPDATE herald.event_log e
        SET locked_at = now(), locked_by = $2, next_attempt_at = now() + make_interval(secs => $3::int)
        WHERE e.id IN (
            SELECT id FROM herald.event_log
            WHERE status = 'pending' AND next_attempt_at <= now() AND trigger_name = ANY ($4::text[])
            ORDER BY next_attempt_at
            LIMIT $1::int
            FOR UPDATE SKIP LOCKED)
        RETURNING e.id, e.trigger_name, e.schema_name, e.table_name, e.payload::text, e.tries,
                  to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                  extract(epoch FROM e.created_at)
        """

    /// The subquery of ``claimSQL`` alone, for checking its plan.
    static let claimCandidatesSQL = """
        SELECT id FROM herald.event_log
        WHERE status = 'pending' AND next_attempt_at <= now() AND trigger_name = ANY ($1::text[])
        ORDER BY next_attempt_at LIMIT 100 FOR UPDATE SKIP LOCKED
        """

    /// Writes a batch of outcomes in one transaction: one UPDATE for all events, one INSERT
    /// for all invocation rows. Only rows still leased by this worker are updated, so a
    /// worker whose lease expired cannot overwrite the newer owner's bookkeeping.
    public func record(_ outcomes: [DeliveryOutcome], workerID: String) throws {
        guard !outcomes.isEmpty else { return }
        let ids = outcomes.map(\.event.id)
        let statuses: [String?] = outcomes.map { $0.decision.status }
        let tries: [String?] = outcomes.map { String($0.attempt) }
        let delays: [String?] = outcomes.map { Self.delayText($0.decision) }
        let codes: [String?] = outcomes.map { $0.statusCode.map(String.init) }
        let errors: [String?] = outcomes.map { $0.errorMessage.map { Self.storable($0, limit: 1000) } }
        let triggers: [String?] = outcomes.map { $0.event.triggerName }
        let headers: [String?] = outcomes.map { DeliveryRequest.recordedJSON($0.requestHeaders) }
        let bodies: [String?] = outcomes.map { $0.responseBody.map { Self.storable($0, limit: Int.max) } }
        let classes: [String?] = outcomes.map { $0.errorClass }
        let durations: [String?] = outcomes.map { String($0.durationMilliseconds) }
        let idArray = PGArray.literal(ids)
        try connection.transaction {
            try connection.query(
                """
                UPDATE herald.event_log e
                SET status = u.status, tries = u.tries,
                    next_attempt_at = CASE WHEN u.status = 'pending'
                                           THEN now() + make_interval(secs => u.delay) ELSE e.next_attempt_at END,
                    finished_at = CASE WHEN u.status = 'pending' THEN NULL ELSE now() END,
                    locked_at = NULL, locked_by = NULL,
                    last_status_code = u.code, last_error = u.error
                FROM unnest($1::bigint[], $2::text[], $3::int[], $4::float8[], $5::int[], $6::text[])
                     AS u(id, status, tries, delay, code, error)
                WHERE e.id = u.id AND e.locked_by = $7
                """,
                [
                    idArray, PGArray.literal(statuses), PGArray.literal(tries), PGArray.literal(delays),
                    PGArray.literal(codes), PGArray.literal(errors), workerID,
                ])
            try connection.query(
                """
                INSERT INTO herald.invocation_log
                    (event_id, trigger_name, attempt, status_code, error_class, error_message,
                     request_headers, response_body, duration_ms)
                SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::int[], $5::text[], $6::text[],
                                     $7::jsonb[], $8::text[], $9::float8[])
                """,
                [
                    idArray, PGArray.literal(triggers), PGArray.literal(tries), PGArray.literal(codes),
                    PGArray.literal(classes), PGArray.literal(errors), PGArray.literal(headers),
                    PGArray.literal(bodies), PGArray.literal(durations),
                ])
        }
    }

    private static func delayText(_ decision: RetryDecision) -> String? {
        guard case .retry(let seconds) = decision else { return nil }
        return String(seconds)
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

    /// Seconds since the oldest pending event was created; nil when none is pending.
    public func oldestPendingAgeSeconds() throws -> Double? {
        let result = try connection.query(
            "SELECT extract(epoch FROM now() - min(created_at)) FROM herald.event_log WHERE status = 'pending'")
        return result[0, 0].flatMap(Double.init)
    }

    /// PostgreSQL text cannot hold NUL; a receiver's bytes may contain it.
    static func storable(_ text: String, limit: Int) -> String {
        let cleaned = text.utf8.contains(0) ? text.replacingOccurrences(of: "\0", with: "\u{FFFD}") : text
        return cleaned.utf8.count > limit ? String(cleaned.prefix(limit)) : cleaned
    }
}
