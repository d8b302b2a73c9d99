import Foundation

/// The SQL of pull consumers, on the same log and bookkeeping as webhook delivery: a receive
/// is a claim (due events, heads of keys only, `FOR UPDATE SKIP LOCKED`) leased for the
/// consumer's visibility timeout; an ack or nack is an outcome written by ``EventStore/record(_:workerID:)``
/// under that lease. The lease holder is `consumer:<name>`, so any worker's listener can
/// answer for any lease and a restart loses nothing.
///
/// A receive counts as a try when it is made (`tries + 1`), so a lease that lapses without an
/// answer has already been counted: the event is simply due again. Such a lapsed receive gets
/// its attempt row when the event is next received (`timeout`, "not acknowledged"); once an
/// event has been received as often as its trigger allows (`num_retries + 1`), the next
/// receive fails it instead (or blocks its key, for an ordered trigger with `on_failure: block`).
struct ConsumerStore {
    let connection: PGConnection

    static func holder(_ consumer: String) -> String { "consumer:\(consumer)" }

    /// One received event, as the receive path decides about it.
    struct Received {
        var event: ClaimedEvent
        /// The previous receive's lease lapsed without an answer.
        var previousLapsed: Bool
    }

    /// Claims up to `limits[trigger]` due events of each trigger for `consumer`, leased for
    /// `visibilitySeconds`; `tries` already counts this receive.
    func receive(limits: [String: Int], consumer: String, visibilitySeconds: Int) throws(PGError) -> [Received] {
        let triggers = limits.keys.sorted()
        let result = try connection.query(
            Self.receiveSQL,
            [
                PGArray.literal(triggers.map { String(limits[$0] ?? 0) }), Self.holder(consumer), String(visibilitySeconds),
                PGArray.literal(triggers), PGArray.literal(triggers.map { _ in "" }),
            ])
        return try result.rows { row throws(PGError) in
            // The claim counted this receive; a claimed event's tries are the attempts before it.
            let event = try EventStore.decodeClaimed(result, row: row, triesCounted: 1)
            return Received(event: event, previousLapsed: try result.decode(Bool.self, row: row, column: 12))
        }
    }

    /// The claim of ``EventStore/claimSQL`` (unkeyed due events and heads of keys, the
    /// trigger enabled), with the try counted at once and whether the previous lease lapsed
    /// (it was still held: an ack or nack clears it).
    static let receiveSQL = """
        WITH picked AS (
            SELECT chosen.id
            FROM unnest($4::text[], $1::int[], $5::text[]) AS quota(trigger_name, n, after_key)
            CROSS JOIN LATERAL (
                SELECT unkeyed.id FROM (\(EventStore.dueUnkeyedSQL(trigger: "quota.trigger_name", limit: "quota.n"))) unkeyed
                UNION ALL
                (\(EventStore.keyedHeadsSQL))
                LIMIT quota.n) chosen
            WHERE NOT EXISTS (SELECT FROM herald.trigger_state s
                              WHERE s.trigger_name = quota.trigger_name AND NOT s.enabled)),
        previous AS (
            SELECT e.id, e.locked_by IS NOT NULL AS lapsed FROM herald.event_log e JOIN picked USING (id))
        UPDATE herald.event_log e
        SET locked_at = now(), locked_by = $2, next_attempt_at = now() + make_interval(secs => $3::int),
            tries = e.tries + 1
        FROM previous
        WHERE e.id = previous.id
        RETURNING \(EventStore.claimedColumns), previous.lapsed
        """

    /// The events among these that `consumer` holds now, with their current lease and tries
    /// (an answer is written only for the lease it names).
    func held(numbers: [Int64], importedIDs: [String], consumer: String) throws(PGError) -> [ClaimedEvent] {
        guard !numbers.isEmpty || !importedIDs.isEmpty else { return [] }
        let result = try connection.query(
            """
            SELECT \(EventStore.claimedColumns)
            FROM herald.event_log e
            WHERE \(importedIDs.isEmpty ? "e.id = ANY ($1::bigint[])" : "(e.id = ANY ($1::bigint[]) OR e.imported_id = ANY ($3::uuid[]))")
              AND e.locked_by = $2 AND e.status = 'pending'
            """,
            [PGArray.literal(numbers), Self.holder(consumer)] + (importedIDs.isEmpty ? [] : [PGArray.literal(importedIDs)]))
        return try result.rows { row throws(PGError) in
            try EventStore.decodeClaimed(result, row: row, triesCounted: 1)
        }
    }

    /// Attempt rows for receives whose lease lapsed unanswered (the events are being
    /// received again, so nothing else changes).
    func recordLapsed(_ events: [ClaimedEvent], visibilitySeconds: Int) throws(PGError) {
        guard !events.isEmpty else { return }
        try connection.query(
            """
            INSERT INTO herald.invocation_log (event_id, trigger_name, attempt, error_class, error_message, duration_ms)
            SELECT id, trigger_name, attempt, 'timeout', $4, $5::float8
            FROM unnest($1::bigint[], $2::text[], $3::int[]) AS u(id, trigger_name, attempt)
            """,
            [
                PGArray.literal(events.map(\.id)), PGArray.literal(events.map(\.triggerName)),
                PGArray.literal(events.map { String($0.tries) }),
                "not acknowledged within the consumer's visibility timeout (\(visibilitySeconds) s)",
                String(visibilitySeconds * 1000),
            ])
    }
}
