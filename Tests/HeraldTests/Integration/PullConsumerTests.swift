import Foundation
import Testing

@testable import Herald

/// A database with an `items` table whose trigger is pulled by consumer `billing`, and a
/// worker config serving it on a loopback listener.
struct PullFixture {
    static let token = "pull-test-token-0123456789"
    let database: TestDatabase
    let connection: PGConnection
    let configPath: String
    let base: String
    let listen: String

    init(visibility: Int = 30, retry: String = "{num_retries: 5}", ordering: String? = nil) throws {
        database = try TestDatabase()
        connection = try database.connect()
        try connection.execute(script: "CREATE TABLE items (id serial PRIMARY KEY, k int NOT NULL DEFAULT 0, n int NOT NULL)")
        let port = try freePort()
        listen = "127.0.0.1:\(port)"
        base = "http://\(listen)"
        let yaml = """
            database: {url: '\(database.url)'}
            worker: {fetch_interval_ms: 100, recorder_flush_interval_ms: 5, stats_log_interval_seconds: 1, lease_seconds: 30}
            stats: {listen: "127.0.0.1:\(port)"}
            consumers:
              - {name: billing, token_from_env: BILLING_TOKEN, visibility_timeout_sec: \(visibility)}
            tables:
              - table: {schema: public, name: items}
                event_triggers:
                  - name: items_pulled
                    definition: {insert: {columns: "*"}}
                    retry_conf: \(retry)
                    delivery: {pull: billing}
            """ + (ordering.map { "\n        ordering: \($0)" } ?? "")
        configPath = try temporaryFile(yaml)
        let install = try runHerald(["install-triggers", "--config", configPath], environment: Self.environment)
        guard install.status == 0 else { throw ReceiverError(message: "install-triggers failed: \(install.stderr)") }
    }

    static let environment = ["BILLING_TOKEN": token]

    /// A worker serving the consumer API, once it is ready (LISTENing, the listener up).
    func worker() throws -> WorkerProcess {
        let worker = try WorkerProcess(
            configPath: configPath, environment: Self.environment.merging(["HERALD_STATS_LISTEN": listen]) { $1 },
            readiness: true)
        guard worker.waitUntilStarted() else { throw ReceiverError(message: "worker not ready: \(worker.log.suffix(2000))") }
        return worker
    }

    func count(_ sql: String) throws -> Int { Int(try connection.query(sql)[0, 0] ?? "") ?? -1 }

    /// The events of one receive, parsed; fails on any status but 200.
    func receive(max: Int = 100, waitMs: Int = 0) throws -> [[String: Any]] {
        let response = try httpPost(
            "\(base)/v1/consumers/billing/receive", json: "{\"max\": \(max), \"wait_ms\": \(waitMs)}", token: Self.token)
        guard response.status == 200,
            let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any],
            let events = object["events"] as? [[String: Any]]
        else { throw ReceiverError(message: "receive answered \(response.status): \(response.body)") }
        return events
    }

    func answer(_ verb: String, _ events: [[String: Any]], extra: String = "") throws -> [String: Any] {
        let ids = events.compactMap { $0["ack_id"] as? String }.map { "\"\($0)\"" }.joined(separator: ",")
        let response = try httpPost(
            "\(base)/v1/consumers/billing/\(verb)", json: "{\"ack_ids\": [\(ids)]\(extra)}", token: Self.token)
        guard response.status == 200,
            let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
        else { throw ReceiverError(message: "\(verb) answered \(response.status): \(response.body)") }
        return object
    }
}

@Suite("Pull consumers", .enabled(if: TestEnvironment.integrationEnabled))
struct PullConsumerTests {
    static var consumerScript: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../scripts/lib/pull-consumer.py").standardized.path
    }

    /// Two consumers of one group (the README's Python client, run twice at once) receive
    /// 5,000 events between them: every event once, none twice while leased, both served.
    @Test func twoConsumersShareFiveThousandEventsNoneTwice() throws {
        let setup = try PullFixture()
        try setup.connection.execute(script: "INSERT INTO items (n) SELECT g FROM generate_series(1, 5000) g")
        let worker = try setup.worker()
        let outputs = [try temporaryFile("", suffix: ".jsonl"), try temporaryFile("", suffix: ".jsonl")]
        let consumers = try outputs.map { output -> Process in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                "python3", Self.consumerScript, setup.base, "billing", "--max", "50", "--wait-ms", "500", "--idle-exit", "3",
                "--out", output,
            ]
            process.environment = ProcessInfo.processInfo.environment.merging(
                ["HERALD_CONSUMER_TOKEN": PullFixture.token]) { _, new in new }
            try process.run()
            return process
        }
        let delivered = try eventually(timeout: 120) {
            try setup.count("SELECT count(*) FROM herald.event_log WHERE status = 'delivered'") == 5000
        }
        consumers.forEach { $0.waitUntilExit() }
        #expect(delivered, "\(worker.log.suffix(3000))")
        #expect(consumers.allSatisfy { $0.terminationStatus == 0 })
        let received = try outputs.map { path in
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
            }
        }
        let all = received.flatMap { $0 }
        #expect(all.count == 5000, "received \(all.count) times")
        #expect(Set(all.compactMap { $0["id"] as? String }).count == 5000)
        #expect(Set(all.compactMap { ($0["new"] as? [String: Any])?["n"] as? Int }) == Set(1...5000))
        #expect(received.allSatisfy { !$0.isEmpty }, "both consumers were served: \(received.map(\.count))")
        #expect(all.allSatisfy { $0["attempt"] as? Int == 1 })
        // One attempt row per event, the ack; tries count the receive.
        #expect(try setup.count("SELECT count(*) FROM herald.invocation_log WHERE status_code = 200") == 5000)
        #expect(try setup.count("SELECT count(*) FROM herald.event_log WHERE tries = 1") == 5000)
        #expect(worker.terminate() == 0)
    }

    /// A consumer that never answers: its events come back after the visibility timeout, each
    /// receive a try with its attempt row; past the trigger's tries they fail, and are alerted
    /// in the log like any final failure.
    @Test func unansweredEventsComeBackAfterTheVisibilityTimeoutUntilTheirTriesRunOut() throws {
        let setup = try PullFixture(visibility: 1, retry: "{num_retries: 2}")
        try setup.connection.execute(script: "INSERT INTO items (n) SELECT g FROM generate_series(1, 3) g")
        let worker = try setup.worker()
        let first = try setup.receive()
        #expect(first.count == 3 && first.allSatisfy { $0["attempt"] as? Int == 1 })
        // Leased: nobody else gets them meanwhile.
        #expect(try setup.receive().isEmpty)
        for attempt in 2...3 {
            Thread.sleep(forTimeInterval: 1.2)
            let again = try setup.receive()
            #expect(again.count == 3 && again.allSatisfy { $0["attempt"] as? Int == attempt }, "\(again)")
            #expect(Set(again.compactMap { $0["id"] as? String }) == Set(first.compactMap { $0["id"] as? String }))
            let payload = try #require(again.first?["payload"] as? [String: Any])
            #expect((payload["delivery_info"] as? [String: Any])?["current_retry"] as? Int == attempt - 1)
            // The old ack ids answer nothing any more.
            let stale = try setup.answer("ack", first)
            #expect(stale["acked"] as? Int == 0 && (stale["stale"] as? [Any])?.count == 3)
        }
        Thread.sleep(forTimeInterval: 1.2)
        #expect(try setup.receive().isEmpty)
        #expect(try setup.count("SELECT count(*) FROM herald.event_log WHERE status = 'failed' AND tries = 3") == 3)
        #expect(
            try setup.count(
                "SELECT count(*) FROM herald.invocation_log WHERE error_class = 'timeout' AND error_message LIKE 'not acknowledged%'")
                == 9)
        #expect(try eventually { worker.log.contains("event failed for good") }, "\(worker.log.suffix(2000))")
        #expect(worker.terminate() == 0)
    }

    /// A nack with `retry_after` holds the event back that long, counts the try, and the event
    /// is received again and can be acked.
    @Test func aNackWithRetryAfterHoldsTheEventBack() throws {
        let setup = try PullFixture()
        try setup.connection.execute(script: "INSERT INTO items (n) VALUES (1)")
        let worker = try setup.worker()
        let first = try setup.receive()
        #expect(first.count == 1)
        let nacked = try setup.answer("nack", first, extra: ", \"retry_after\": 2")
        #expect(nacked["nacked"] as? Int == 1 && nacked["failed"] as? Int == 0, "\(nacked)")
        #expect(try setup.receive().isEmpty)
        let started = Date()
        let again = try setup.receive(waitMs: 5000)
        #expect(again.count == 1 && again.first?["attempt"] as? Int == 2, "\(again)")
        #expect(Date().timeIntervalSince(started) >= 1.5)
        let acked = try setup.answer("ack", again)
        #expect(acked["acked"] as? Int == 1)
        #expect(try setup.count("SELECT count(*) FROM herald.event_log WHERE status = 'delivered' AND tries = 2") == 1)
        #expect(try setup.count("SELECT count(*) FROM herald.invocation_log WHERE error_class = 'nack'") == 1)
        #expect(worker.terminate() == 0)
    }

    /// Leases live in the database: events received before the worker was killed are acked
    /// through the next worker, and the rest are received from it. Nothing is lost.
    @Test func aWorkerRestartLosesNothing() throws {
        let setup = try PullFixture()
        try setup.connection.execute(script: "INSERT INTO items (n) SELECT g FROM generate_series(1, 20) g")
        let worker = try setup.worker()
        let held = try setup.receive(max: 10)
        #expect(held.count == 10)
        worker.killHard()
        let next = try setup.worker()
        #expect(try setup.answer("ack", held)["acked"] as? Int == 10)
        let rest = try setup.receive(max: 100)
        #expect(rest.count == 10)
        #expect(try setup.answer("ack", rest)["acked"] as? Int == 10)
        #expect(try setup.count("SELECT count(*) FROM herald.event_log WHERE status = 'delivered'") == 20)
        #expect(next.terminate() == 0)
    }

    /// A long poll returns as soon as a capture NOTIFY brings an event, not at its deadline.
    @Test func aLongPollIsWokenByTheCapture() throws {
        let setup = try PullFixture()
        let worker = try setup.worker()
        // A writer of its own commits 0.7 s into the poll.
        let inserter = Process()
        inserter.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        inserter.arguments = [
            "psql", "-X", "-q", setup.database.url, "-c", "SELECT pg_sleep(0.7)", "-c", "INSERT INTO items (n) VALUES (42)",
        ]
        let started = Date()
        try inserter.run()
        let events = try setup.receive(waitMs: 10_000)
        inserter.waitUntilExit()
        let waited = Date().timeIntervalSince(started)
        #expect(events.count == 1)
        #expect(waited >= 0.6 && waited < 3, "returned after \(waited) s")
        #expect(worker.terminate() == 0)
    }

    /// Only heads of keys are receivable: a key's next event waits until its head is acked.
    @Test func anOrderedTriggerHandsOutOnlyTheHeadOfEachKey() throws {
        let setup = try PullFixture(ordering: "{key: [k]}")
        try setup.connection.execute(script: "INSERT INTO items (k, n) SELECT g % 3, g FROM generate_series(1, 9) g")
        let worker = try setup.worker()
        var seen: [Int] = []
        for _ in 0..<3 {
            let heads = try setup.receive()
            #expect(heads.count == 3, "\(heads)")
            #expect(try setup.receive().isEmpty)
            seen += heads.compactMap { ((($0["payload"] as? [String: Any])?["event"] as? [String: Any])?["data"] as? [String: Any]).flatMap { ($0["new"] as? [String: Any])?["n"] as? Int } }
            _ = try setup.answer("ack", heads)
        }
        // Each key's events in order: key 1 → 1, 4, 7; key 2 → 2, 5, 8; key 0 → 3, 6, 9.
        for key in 0..<3 {
            let ofKey = seen.filter { $0 % 3 == key }
            #expect(ofKey == ofKey.sorted(), "\(seen)")
        }
        #expect(Set(seen) == Set(1...9))
        #expect(worker.terminate() == 0)
    }

    /// Each consumer its own token; errors name the cause.
    @Test func requestsAreAuthenticatedAndCheckedPerConsumer() throws {
        let setup = try PullFixture()
        let worker = try setup.worker()
        let url = "\(setup.base)/v1/consumers/billing/receive"
        #expect(try httpPost(url, json: "{}", token: nil).status == 401)
        #expect(try httpPost(url, json: "{}", token: "wrong").status == 401)
        #expect(try httpPost("\(setup.base)/v1/consumers/nobody/receive", json: "{}", token: PullFixture.token).status == 404)
        let bad = try httpPost(url, json: "{\"max\": 0}", token: PullFixture.token)
        #expect(bad.status == 400 && bad.body.contains("max must be"), "\(bad)")
        let unknown = try httpPost(url, json: "{\"maximum\": 5}", token: PullFixture.token)
        #expect(unknown.status == 400 && unknown.body.contains("unknown key 'maximum'"), "\(unknown)")
        let noIDs = try httpPost("\(setup.base)/v1/consumers/billing/ack", json: "{}", token: PullFixture.token)
        #expect(noIDs.status == 400, "\(noIDs)")
        let garbage = try setup.answer("ack", [["ack_id": "not-an-ack-id"]])
        #expect(garbage["acked"] as? Int == 0 && (garbage["stale"] as? [String]) == ["not-an-ack-id"])
        // The listener's own pages are not the consumer's: /metrics shows the group's lag.
        try setup.connection.execute(script: "INSERT INTO items (n) VALUES (1)")
        let lagShown = try eventually(timeout: 20) {
            let metrics = try httpGet("\(setup.base)/metrics").body
            guard let line = metrics.split(separator: "\n").first(where: { $0.hasPrefix("herald_consumer_lag_seconds{consumer=\"billing\"}") }),
                let value = Double(line.split(separator: " ").last ?? "")
            else { return false }
            return value > 0
        }
        let metricsText = try httpGet("\(setup.base)/metrics").body
        #expect(lagShown, "\(metricsText.split(separator: "\n").filter { $0.contains("consumer") })")
        let triggers = try runHerald(["triggers", "--config", setup.configPath], environment: PullFixture.environment)
        #expect(triggers.stdout.contains("pull by billing"), "\(triggers.stdout)")
        #expect(worker.terminate() == 0)
    }
}
