import Foundation
import Testing

@testable import Herald

/// A database with an `items` table and one batched trigger on it, installed.
struct BatchFixture {
    let database: TestDatabase
    let connection: PGConnection
    let configPath: String

    init(
        webhook: String, batch: String, retry: String = "{num_retries: 0, interval_sec: 0, timeout_sec: 5}",
        extra: String = "", environment: [String: String] = [:]
    ) throws {
        database = try TestDatabase()
        connection = try database.connect()
        try connection.execute(script: "CREATE TABLE items (id serial PRIMARY KEY, n int NOT NULL)")
        let yaml = """
            database: {url: '\(database.url)'}
            worker: {fetch_interval_ms: 100, recorder_flush_interval_ms: 5, stats_log_interval_seconds: 1, lease_seconds: 30}
            stats: {listen: ""}
            tables:
              - table: {schema: public, name: items}
                event_triggers:
                  - name: items_batched
                    definition: {insert: {columns: "*"}}
                    retry_conf: \(retry)
                    webhook: \(webhook)
                    batch: \(batch)
            """ + (extra.isEmpty ? "" : "\n" + extra)
        configPath = try temporaryFile(yaml)
        let install = try runHerald(["install-triggers", "--config", configPath], environment: environment)
        guard install.status == 0 else { throw ReceiverError(message: "install-triggers failed: \(install.stderr)") }
    }

    func count(_ sql: String) throws -> Int {
        Int(try connection.query(sql)[0, 0] ?? "") ?? -1
    }
}

/// What a receiver got in batches: each request's events, parsed.
struct ReceivedBatch {
    var webhookID: String
    var events: [[String: Any]]

    static func parse(_ requests: [Receiver.Request]) -> [ReceivedBatch] {
        requests.map { request in
            let object = (try? JSONSerialization.jsonObject(with: Data(request.body.utf8))) as? [String: Any]
            return ReceivedBatch(
                webhookID: request.header("webhook-id") ?? "",
                events: object?["events"] as? [[String: Any]] ?? [])
        }
    }

    /// The `n` column of each event's new row.
    static func numbers(_ event: [String: Any]) -> Int? {
        ((event["event"] as? [String: Any])?["data"] as? [String: Any]).flatMap { ($0["new"] as? [String: Any])?["n"] as? Int }
    }
}

@Suite("Batched delivery", .enabled(if: TestEnvironment.integrationEnabled))
struct BatchDeliveryTests {
    /// 10,000 events, `max_events: 100`: at most 110 requests, every event exactly once, each
    /// payload the one it would be alone, one attempt row per event naming its batch.
    @Test func tenThousandEventsArriveInAtMost110Requests() throws {
        let receiver = try Receiver()
        let setup = try BatchFixture(webhook: receiver.url("/fast"), batch: "{max_events: 100, max_wait_ms: 200}")
        try setup.connection.execute(script: "INSERT INTO items (n) SELECT g FROM generate_series(1, 10000) g")
        let worker = try WorkerProcess(configPath: setup.configPath)
        let delivered = try eventually(timeout: 90) {
            try setup.count("SELECT count(*) FROM herald.event_log WHERE status = 'delivered'") == 10_000
        }
        #expect(delivered, "\(worker.log.suffix(3000))")
        let batches = ReceivedBatch.parse(try receiver.requests())
        #expect(batches.count <= 110, "\(batches.count) requests")
        #expect(batches.allSatisfy { $0.webhookID.hasPrefix(BatchID.prefix) && $0.events.count <= 100 })
        let numbers = batches.flatMap { $0.events.compactMap(ReceivedBatch.numbers) }
        #expect(numbers.count == 10_000)
        #expect(Set(numbers) == Set(1...10_000))
        // Each payload is Hasura's, as sent alone: its own id, trigger, table and delivery info.
        let first = try #require(batches.first?.events.first)
        #expect((first["trigger"] as? [String: Any])?["name"] as? String == "items_batched")
        #expect((first["table"] as? [String: Any])?["name"] as? String == "items")
        #expect(UUID(uuidString: first["id"] as? String ?? "") != nil)
        #expect((first["delivery_info"] as? [String: Any])?["current_retry"] as? Int == 0)
        let ids = batches.flatMap { $0.events.compactMap { $0["id"] as? String } }
        #expect(Set(ids).count == 10_000)
        // One attempt row per event, linked to the request it went in.
        #expect(try setup.count("SELECT count(*) FROM herald.invocation_log WHERE batch_id IS NOT NULL") == 10_000)
        #expect(try setup.count("SELECT count(DISTINCT batch_id) FROM herald.invocation_log") == batches.count)
        #expect(Set(batches.map(\.webhookID)).count == batches.count)
        // Headers and response are stored once per batch (once per part of it, when the
        // recorder wrote a batch's outcomes in two flushes); the console shows them for every event.
        let carriers = try setup.count("SELECT count(*) FROM herald.invocation_log WHERE request_headers <> '{}'")
        #expect(carriers >= batches.count && carriers <= 2 * batches.count, "\(carriers) rows carry headers")
        let browser = EventBrowser(try EventAdmin(connection: setup.connection))
        for number in [Int64(1), 5_000, 10_000] {
            let attempt = try #require(try browser.detail(number)?.attempts.first)
            #expect(attempt.headers.contains { $0.name == "webhook-id" && $0.value.hasPrefix(BatchID.prefix) }, "\(attempt.headers)")
            #expect(attempt.responseBody == "ok")
        }
        #expect(worker.terminate() == 0)
    }

    /// A receiver failing every third request: every event is delivered in the end, each
    /// failed batch counted as one failed try for each of its events.
    @Test func aReceiverFailingEveryThirdBatchLosesNothingAndTriesCountPerEvent() throws {
        let receiver = try Receiver()
        let setup = try BatchFixture(
            webhook: receiver.url("/failevery/3"), batch: "{max_events: 50, max_wait_ms: 100}",
            retry: "{num_retries: 10, interval_sec: 0, timeout_sec: 5}")
        try setup.connection.execute(script: "INSERT INTO items (n) SELECT g FROM generate_series(1, 3000) g")
        let worker = try WorkerProcess(configPath: setup.configPath)
        let delivered = try eventually(timeout: 90) {
            try setup.count("SELECT count(*) FROM herald.event_log WHERE status = 'delivered'") == 3000
        }
        #expect(delivered, "\(worker.log.suffix(3000))")
        let requests = try receiver.requests()
        let failedRequests = requests.count / 3
        #expect(failedRequests > 0)
        // Every try is an attempt row; the failed ones carry the receiver's 500, per event.
        let tries = try setup.count("SELECT sum(tries) FROM herald.event_log")
        #expect(tries == (try setup.count("SELECT count(*) FROM herald.invocation_log")))
        #expect(try setup.count("SELECT count(*) FROM herald.event_log WHERE tries > 1") > 0)
        // The receiver failed its 3rd, 6th, … request: as many failed attempt rows as those carried events.
        let failedEvents = ReceivedBatch.parse(requests).enumerated().filter { ($0.offset + 1) % 3 == 0 }
            .reduce(0) { $0 + $1.element.events.count }
        #expect(try setup.count("SELECT count(*) FROM herald.invocation_log WHERE status_code = 500") == failedEvents)
        #expect(try setup.count("SELECT count(*) FROM herald.invocation_log WHERE status_code = 500") == tries - 3000)
        // A retried event's payload says which retry it is.
        let retried = ReceivedBatch.parse(requests).flatMap(\.events).filter {
            ($0["delivery_info"] as? [String: Any])?["current_retry"] as? Int ?? 0 > 0
        }
        #expect(retried.count == tries - 3000)
        let numbers = Set(ReceivedBatch.parse(requests).flatMap { $0.events.compactMap(ReceivedBatch.numbers) })
        #expect(numbers == Set(1...3000))
        #expect(worker.terminate() == 0)
    }

    /// A batch is signed like any body (the reference Standard Webhooks library verifies it
    /// under its batch id), a partial batch goes out after `max_wait_ms`, and a request
    /// transform sees the batch as `$body`.
    @Test func batchesAreSignedSentAfterTheirWaitAndTransformedWhole() throws {
        let receiver = try Receiver()
        let secret = "whsec_" + Data((0..<24).map { UInt8($0 * 7 % 256) }).base64EncodedString()
        let setup = try BatchFixture(
            webhook: receiver.url("/ok"), batch: "{max_events: 1000, max_wait_ms: 300}",
            extra: """
                        signing: {secret_from_env: BATCH_SECRET}
                      - name: items_counted
                        definition: {insert: {columns: "*"}}
                        webhook: \(receiver.url("/counted"))
                        retry_conf: {num_retries: 0, interval_sec: 0, timeout_sec: 5}
                        batch: {max_events: 1000, max_wait_ms: 300}
                        request_transform:
                          version: 2
                          template_engine: Kriti
                          body: {action: transform, template: '{"count": {{size($body.events)}}, "first": {{$body.events[0].event.data.new.n}}}'}
                """, environment: ["BATCH_SECRET": secret])
        let worker = try WorkerProcess(configPath: setup.configPath, environment: ["BATCH_SECRET": secret])
        Thread.sleep(forTimeInterval: 1)
        try setup.connection.execute(script: "INSERT INTO items (n) SELECT g FROM generate_series(1, 7) g")
        #expect(try eventually(timeout: 30) { try receiver.requests().count == 2 }, "\(worker.log.suffix(3000))")
        let requests = try receiver.requests()
        let signed = try #require(requests.first { $0.path == "/ok" })
        let counted = try #require(requests.first { $0.path == "/counted" })
        // Partial batches (7 of 1000) left after their wait, not before it.
        #expect(signed.time - (try setup.epochOfFirstEvent()) >= 0.25)
        let verified = try standardWebhooksVerified([signed], secret: secret)
        #expect((verified.first?["events"] as? [[String: Any]])?.count == 7)
        #expect(signed.header("webhook-id")?.hasPrefix(BatchID.prefix) ?? false)
        #expect(counted.body == #"{"count":7,"first":1}"#, "\(counted.body)")
        #expect(worker.terminate() == 0)
    }

    /// Ordered keys stay in order across batches, through a receiver that fails a fifth of
    /// requests and a worker killed mid-run: a batch holds only heads of keys, so no key ever
    /// has two events in flight.
    @Test func orderedKeysStayInOrderAcrossBatchesWithFailuresAndAKilledWorker() throws {
        let receiver = try Receiver()
        let setup = try OrderingFixture(
            webhook: receiver.url("/chaos/20"), ordering: "{key: primary_key}",
            retry: "{num_retries: 30, interval_sec: 0, timeout_sec: 2}", batch: "{max_events: 20, max_wait_ms: 50}")
        try setup.connection.execute(
            script: "INSERT INTO accounts SELECT 't' || (g % 5), g, 0 FROM generate_series(1, 50) g")
        let first = try WorkerProcess(configPath: setup.configPath)
        let second = try WorkerProcess(configPath: setup.configPath)
        for _ in 1...30 {
            try setup.connection.execute(script: "UPDATE accounts SET n = n + 1")
        }
        let total = 50 + 50 * 30
        #expect(try eventually(timeout: 60) { try setup.count("status = 'delivered'") >= total / 3 })
        first.killHard()
        let allDelivered = try eventually(timeout: 120) { try setup.count("status = 'delivered'") == total }
        let deliveredCount = try setup.count("status = 'delivered'")
        #expect(allDelivered, "delivered \(deliveredCount) of \(total)\n\(second.log.suffix(3000))")
        let deliveries = try receiver.requests().flatMap { request -> [KeyedDelivery] in
            let object = (try? JSONSerialization.jsonObject(with: Data(request.body.utf8))) as? [String: Any]
            let events = object?["events"] as? [[String: Any]] ?? []
            // One request per event as the ordering checks read them, keyed by the event's id.
            return KeyedDelivery.parse(events.compactMap { event in
                guard let data = try? JSONSerialization.data(withJSONObject: event) else { return nil }
                return Receiver.Request(
                    method: "POST", path: request.path, headers: ["webhook-id": event["id"] as? String ?? ""],
                    body: String(decoding: data, as: UTF8.self), time: request.time)
            })
        }
        #expect(Set(deliveries.map(\.webhookID)).count == total)
        #expect(KeyedDelivery.outOfOrderKeys(deliveries) == [])
        #expect(try receiver.requests().count < total / 2, "batches carried several events each")
        #expect(try setup.count("tries > 1") > 0)
        #expect(second.terminate() == 0)
    }
}

extension BatchFixture {
    /// When the first event was captured (Unix seconds).
    func epochOfFirstEvent() throws -> Double {
        Double(try connection.query("SELECT extract(epoch FROM min(created_at)) FROM herald.event_log")[0, 0] ?? "") ?? 0
    }
}
