import Foundation
import Testing

@testable import Herald

/// Ordered delivery's pure parts: the `ordering:` key, the capture SQL, the blocking
/// verdict, the key walk's cursor and the claimer's wake-up when a head finishes.
@Suite("Ordering (pure)")
struct OrderingUnitTests {
    func trigger(_ ordering: String) -> String {
        """
        database: {url: 'postgres://127.0.0.1/app'}
        tables:
          - table: {schema: public, name: orders}
            event_triggers:
              - name: order_changes
                definition: {insert: {columns: "*"}, update: {columns: "*"}, delete: {columns: "*"}}
                webhook: http://127.0.0.1:9/hook
                \(ordering)
        """
    }

    func parse(_ ordering: String) throws(ConfigError) -> TriggerConfig? {
        try ConfigLoader.parse(yaml: trigger(ordering), file: "herald.yaml", environment: [:]).triggers.first
    }

    func failure(_ ordering: String) -> ConfigError? {
        do {
            _ = try parse(ordering)
            return nil
        } catch {
            return error
        }
    }

    @Test func orderingParsesWithDefaults() throws {
        #expect(try parse("")?.ordering == nil)
        #expect(try parse("ordering: {}")?.ordering == OrderingConfig(key: .primaryKey, onFailure: .block))
        #expect(try parse("ordering: {key: primary_key, on_failure: skip}")?.ordering?.onFailure == .skip)
        #expect(try parse("ordering: {key: [tenant_id, order_id]}")?.ordering?.key == .columns(["tenant_id", "order_id"]))
    }

    @Test(arguments: [
        ("ordering: {key: id}", "ordering.key", "unknown key 'id'"),
        ("ordering: {key: []}", "ordering.key", "empty"),
        ("ordering: {key: [a, a]}", "ordering.key", "appears twice"),
        ("ordering: {on_failure: retry}", "ordering.on_failure", "expected block or skip"),
        ("ordering: {keys: [a]}", "ordering", "unknown key 'keys'"),
    ])
    func badOrderingNamesTheKey(ordering: String, key: String, message: String) throws {
        let error = try #require(failure(ordering))
        #expect(error.key?.contains(key) == true, "\(error)")
        #expect(error.message.contains(message), "\(error)")
        #expect(error.description.contains("order_changes") || error.key?.contains("order_changes") == true
            || error.key?.contains("event_triggers") == true, "\(error)")
    }

    @Test func orderedCaptureCallsTheOrderedFunctionWithTheKeyBeforeThePayloadColumns() throws {
        var config = try #require(try parse("ordering: {key: [tenant, id]}"))
        config.update = OperationSpec(columns: .only(["n"]), payload: .only(["id", "n"]))
        let triggers = CaptureTrigger.triggers(for: config, keyColumns: ["tenant", "id"])
        let update = try #require(triggers.first { $0.operation == .update })
        #expect(update.createSQL.hasSuffix(
            "EXECUTE FUNCTION herald.capture_ordered('order_changes', '{\"tenant\",\"id\"}', 'id', 'n')"))
        #expect(update.isOrdered)
        let unordered = CaptureTrigger.triggers(for: config)
        #expect(unordered.allSatisfy { !$0.isOrdered && $0.createSQL.contains("herald.capture('order_changes'") })
        // The fingerprint changes, so install-triggers replaces the trigger.
        #expect(update.fingerprint != unordered[1].fingerprint)
        #expect(config.referencedColumns.contains { $0.column == "tenant" && $0.key == "ordering.key" })
    }

    @Test func aKeyedFinalFailureBlocksUnderBlockAndFailsUnderSkip() throws {
        var policy = RetryPolicy(
            retry: RetryConfig(numRetries: 1, intervalSeconds: 0, timeoutSeconds: 5), backoff: RetryBackoff(),
            maxRetryAfterSeconds: 60)
        let error = AttemptResult.response(status: 500, retryAfter: nil)
        policy.blockKeyOnFailure = true
        #expect(policy.verdict(attempt: 1, result: error, directive: nil, now: Date(), keyed: true).decision == .retry(afterSeconds: 0))
        #expect(policy.verdict(attempt: 2, result: error, directive: nil, now: Date(), keyed: true).decision == .blocked)
        #expect(policy.verdict(attempt: 1, result: error, directive: .abortMessage, now: Date(), keyed: true).decision == .blocked)
        // An event captured before the trigger was ordered has no key: it fails as before.
        #expect(policy.verdict(attempt: 2, result: error, directive: nil, now: Date(), keyed: false).decision == .failed)
        #expect(policy.verdict(attempt: 2, result: .response(status: 200, retryAfter: nil), directive: nil, now: Date(), keyed: true).decision == .delivered)
        policy.blockKeyOnFailure = false
        #expect(policy.verdict(attempt: 2, result: error, directive: nil, now: Date(), keyed: true).decision == .failed)
        #expect(RetryDecision.blocked.status == "pending" && RetryDecision.blocked.isTerminalFailure)
    }

    func event(_ trigger: String, key: String?) -> ClaimedEvent {
        ClaimedEvent(
            id: 1, triggerName: trigger, table: TableName(schema: "public", name: "t"), payload: "{}", tries: 0,
            createdAt: "", createdAtEpoch: 0, orderingKey: key)
    }

    @Test func keyCursorsGoRoundTheKeysAndRestartAWalkThatCameBackShort() {
        var cursors = KeyCursors()
        #expect(cursors.starts.isEmpty)
        // A full claim moves the cursor past its greatest key.
        var reported = cursors.advance(asked: ["k": 3], claimed: ["[1]", "[3]", "[2]"].map { event("k", key: $0) })
        #expect(reported == ["k": 3])
        #expect(cursors.starts == ["k": "[3]"])
        // Short from mid-way: restart from the first key, reported as fully served (look again).
        reported = cursors.advance(asked: ["k": 3], claimed: [event("k", key: "[4]")])
        #expect(reported == ["k": 1])
        #expect(cursors.starts["k"] == nil)
        // Short from the first key: really nothing more is due.
        reported = cursors.advance(asked: ["k": 3], claimed: [event("k", key: "[1]")])
        #expect(reported == ["k": 3])
        #expect(cursors.starts == ["k": "[1]"])
        // Unkeyed events leave the cursor alone.
        reported = cursors.advance(asked: ["u": 2], claimed: [event("u", key: nil), event("u", key: nil)])
        #expect(cursors.starts["u"] == nil && reported == ["u": 2])
    }

    struct Job: FlowJob {
        var hostKey: String
        var triggerName: String
        var startDeadline: ContinuousClock.Instant
    }

    @Test func aFinishedHeadWakesTheClaimerForItsTriggerOnly() {
        let now = ContinuousClock.now
        var flow = FlowControl<Job>(
            limits: .init(
                poolSize: 10, perHostLimit: 10, fetchBatchSize: 10, leaseSeconds: 60, recorderBacklogLimit: 100,
                pollInterval: .seconds(5)),
            routes: [FlowRoute(trigger: "k", hostKey: "a", timeout: .seconds(5))], now: now)
        _ = flow.planClaim(now: now).plan
        // The claim found 2 heads of 10 asked: nothing more due until a head finishes.
        _ = flow.claimed(
            [Job(hostKey: "a", triggerName: "k", startDeadline: now + .seconds(50)),
             Job(hostKey: "a", triggerName: "k", startDeadline: now + .seconds(50))], limits: ["k": 10])
        _ = flow.takeStartable(freeSlots: 10, now: now)
        let waiting = flow.planClaim(now: now).plan
        #expect(waiting == .wait(until: now + .seconds(5)))
        _ = flow.finished(hostKeys: ["a"], now: now)
        let recordedWakes = flow.recorded(1, now: now)
        #expect(!recordedWakes)
        let unknownWakes = flow.keysReleased(triggers: ["other"], now: now)
        #expect(!unknownWakes)
        let wakes = flow.keysReleased(triggers: ["k"], now: now)
        #expect(wakes)
        let plan = flow.planClaim(now: now).plan
        #expect(plan == .claim(["k": 10]))
        _ = flow.beginStopping()
        let stoppedWakes = flow.keysReleased(triggers: ["k"], now: now)
        #expect(!stoppedWakes)
    }
}
