import Foundation
import Testing

@testable import Herald

/// Batched delivery's pure parts: the `batch:` key, the assembler's rules, the batch body
/// and id, and claim sizes for a batched trigger.
@Suite("Batches (pure)")
struct BatchUnitTests {
    typealias Assembler = BatchAssembler<Int>

    let t0 = ContinuousClock.now
    /// The wall clock matching `t0` (Unix seconds).
    let wall0 = 1_800_000_000.0

    func parse(_ batch: String) throws(ConfigError) -> TriggerConfig? {
        let yaml = """
            database: {url: 'postgres://127.0.0.1/app'}
            tables:
              - table: {schema: public, name: orders}
                event_triggers:
                  - name: order_changes
                    definition: {insert: {columns: "*"}}
                    webhook: http://127.0.0.1:9/hook
                    \(batch)
            """
        return try ConfigLoader.parse(yaml: yaml, file: "herald.yaml", environment: [:]).triggers.first
    }

    func entry(_ id: Int, bytes: Int = 10, capturedAgo: Double = 0, sendBy: Duration = .seconds(60)) -> Assembler.Entry {
        .init(event: id, payload: Array(repeating: UInt8(ascii: "x"), count: bytes), createdAtEpoch: wall0 - capturedAgo,
              sendBy: t0 + sendBy)
    }

    func ids(_ batches: [[Assembler.Entry]]) -> [[Int]] { batches.map { $0.map(\.event) } }

    @Test func batchParsesWithDefaultsAndShowsInTheSummary() throws {
        #expect(try parse("")?.batch == nil)
        #expect(try parse("batch: {}")?.batch == BatchConfig())
        let batch = try #require(try parse("batch: {max_events: 500, max_bytes: 65536, max_wait_ms: 0}")?.batch)
        #expect(batch == BatchConfig(maxEvents: 500, maxBytes: 65536, maxWaitMilliseconds: 0))
        #expect(batch.description == "batch(max_events 500, max_bytes 65536, max_wait_ms 0)")
        // check-config prints it under the trigger.
        let config = try ConfigLoader.parse(
            yaml: """
                database: {url: 'postgres://127.0.0.1/app'}
                tables:
                  - table: {schema: public, name: orders}
                    event_triggers:
                      - {name: order_changes, definition: {insert: {columns: "*"}}, webhook: http://127.0.0.1:9/hook, batch: {max_events: 500}}
                """, file: "herald.yaml", environment: [:])
        #expect(ConfigSummary.text(for: config).contains("batch(max_events 500, max_bytes 1048576, max_wait_ms 1000)"))
    }

    @Test(arguments: [
        ("batch: {max_events: 0}", "batch.max_events", "between 1 and 10000"),
        ("batch: {max_events: 10001}", "batch.max_events", "between 1 and 10000"),
        ("batch: {max_bytes: 100}", "batch.max_bytes", "at least 1024"),
        ("batch: {max_wait_ms: -1}", "batch.max_wait_ms", "between 0 and 60000"),
        ("batch: {max_event: 5}", "batch", "unknown key 'max_event'"),
        ("batch: {max_events: many}", "batch.max_events", "expected an integer"),
    ])
    func badBatchNamesTheKey(batch: String, key: String, message: String) throws {
        do {
            _ = try parse(batch)
            Issue.record("accepted \(batch)")
        } catch {
            #expect(error.key?.contains(key) == true, "\(error)")
            #expect(error.message.contains(message), "\(error)")
        }
    }

    @Test func aFullBatchLeavesAtOnceAndThePartOverWaits() {
        var assembler = Assembler()
        let config = BatchConfig(maxEvents: 3, maxWaitMilliseconds: 500)
        let ready = assembler.add((1...7).map { entry($0) }, trigger: "t", config: config, now: t0, wallNow: wall0)
        #expect(ids(ready) == [[1, 2, 3], [4, 5, 6]])
        #expect(assembler.heldCount == 1)
        #expect(assembler.nextDeadline == t0 + .milliseconds(500))
        #expect(assembler.takeDue(now: t0 + .milliseconds(499)).isEmpty)
        // Later events join the open batch and fill it.
        let filled = assembler.add([entry(8), entry(9)], trigger: "t", config: config, now: t0, wallNow: wall0)
        #expect(ids(filled) == [[7, 8, 9]])
        #expect(assembler.heldCount == 0 && assembler.nextDeadline == nil)
    }

    @Test func thePartialBatchLeavesWhenItsOldestEventHasWaited() {
        var assembler = Assembler()
        let config = BatchConfig(maxEvents: 100, maxWaitMilliseconds: 1000)
        // Captured 0.4 s before the claim: due 0.6 s after it.
        _ = assembler.add([entry(1, capturedAgo: 0.4), entry(2)], trigger: "t", config: config, now: t0, wallNow: wall0)
        #expect(assembler.nextDeadline == t0 + .milliseconds(600))
        let due = assembler.takeDue(now: t0 + .milliseconds(600))
        #expect(due.map(\.trigger) == ["t"] && due.map { $0.entries.map(\.event) } == [[1, 2]])
        // A backlog (captured long ago) leaves at once, even partial.
        let old = assembler.add([entry(3, capturedAgo: 30)], trigger: "t", config: config, now: t0, wallNow: wall0)
        #expect(ids(old) == [[3]])
    }

    @Test func bytesSplitBatchesAndAnOversizedEventTravelsAlone() {
        var assembler = Assembler()
        // Envelope 13 bytes; 400-byte payloads and a comma each: two fit in 1024, three do not.
        let config = BatchConfig(maxEvents: 100, maxBytes: 1024, maxWaitMilliseconds: 0)
        let ready = assembler.add(
            [entry(1, bytes: 400), entry(2, bytes: 400), entry(3, bytes: 400), entry(4, bytes: 5000), entry(5, bytes: 10)],
            trigger: "t", config: config, now: t0, wallNow: wall0)
        #expect(ids(ready) == [[1, 2], [3], [4], [5]])
        #expect(ready.allSatisfy { batch in
            batch.count == 1 || batch.reduce(Assembler.envelopeBytes) { $0 + $1.payload.count + 1 } - 1 <= 1024
        })
    }

    @Test func noBatchWaitsPastItsEventsSendingWindow() {
        var assembler = Assembler()
        let config = BatchConfig(maxEvents: 100, maxWaitMilliseconds: 60_000)
        _ = assembler.add([entry(1, sendBy: .seconds(5))], trigger: "t", config: config, now: t0, wallNow: wall0)
        #expect(assembler.nextDeadline == t0 + .seconds(5))
        _ = assembler.add([entry(2), entry(3)], trigger: "u", config: config, now: t0, wallNow: wall0)
        #expect(assembler.heldCount == 3)
        let all = assembler.takeAll()
        #expect(all.map(\.trigger) == ["t", "u"] && all.map { $0.entries.count } == [1, 2])
        #expect(assembler.heldCount == 0)
    }

    @Test func theBatchBodyCarriesEachPayloadAsItIs() throws {
        let payloads = [#"{"id":"a","event":{"op":"INSERT"}}"#, #"{"id":"b"}"#].map { Array($0.utf8) }
        let body = String(decoding: DeliveryRequest.batchBody(payloads), as: UTF8.self)
        #expect(body == #"{"events":[{"id":"a","event":{"op":"INSERT"}},{"id":"b"}]}"#)
        #expect(String(decoding: DeliveryRequest.batchBody([]), as: UTF8.self) == #"{"events":[]}"#)
        #expect(DeliveryRequest.batchBody([Array("{}".utf8)]).count == Assembler.envelopeBytes + 2)
    }

    @Test func theBatchIDIsStablePerEventsAndInstallation() {
        let key = EventIDKey(bytes: Array(repeating: 7, count: 32), v2From: 1)
        let other = EventIDKey(bytes: Array(repeating: 8, count: 32), v2From: 1)
        let id = BatchID.make(key: key, events: [1, 2, 3])
        #expect(id.hasPrefix("batch_") && id.count == 6 + 32)
        #expect(id == BatchID.make(key: key, events: [1, 2, 3]))
        #expect(id != BatchID.make(key: key, events: [1, 2]))
        #expect(id != BatchID.make(key: other, events: [1, 2, 3]))
    }

    /// Host slots count requests; a batched trigger claims as many events as its requests carry,
    /// but never more than its rate limit allows.
    @Test func aBatchedTriggerClaimsRequestsTimesItsBatch() {
        typealias Job = FlowControlTests.Job
        let limits = FlowControl<Job>.Limits(
            poolSize: 4, perHostLimit: 4, fetchBatchSize: 100, leaseSeconds: 300, recorderBacklogLimit: 1000,
            pollInterval: .seconds(1))
        let routes = [
            FlowRoute(trigger: "batched", hostKey: "a", timeout: .seconds(10), eventsPerRequest: 50),
            FlowRoute(trigger: "single", hostKey: "b", timeout: .seconds(10)),
        ]
        var flow = FlowControl<Job>(limits: limits, routes: routes, now: t0)
        guard case .claim(let asked) = flow.planClaim(now: t0).plan else {
            Issue.record("no claim")
            return
        }
        let single = asked["single", default: 0]
        let batched = asked["batched", default: 0]
        #expect(single > 0 && batched == (batched / 50) * 50 && batched / 50 <= single + 1, "\(asked)")
        // 120 events came back as three requests: the trigger got all it asked for only if
        // the claim filled its limit, counted in events.
        let jobs = (0..<3).map { Job(id: $0, hostKey: "a", triggerName: "batched", startDeadline: t0 + .seconds(100)) }
        _ = flow.claimed(jobs, events: ["batched": 120], limits: ["batched": batched])
        #expect(flow.queuedTotal == 3)

        var limited = routes[0]
        limited.protection.rateLimit = RateLimitConfig(perSecond: 30, burst: 30)
        var rated = FlowControl<Job>(limits: limits, routes: [limited], now: t0)
        guard case .claim(let ratedAsk) = rated.planClaim(now: t0).plan else {
            Issue.record("no claim under a rate limit")
            return
        }
        #expect(ratedAsk == ["batched": 30])
    }
}
