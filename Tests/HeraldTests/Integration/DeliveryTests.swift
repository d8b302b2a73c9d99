import Foundation
import Logging
import Testing

@testable import Herald

/// `herald run` end to end: a real PostgreSQL, real receivers on ephemeral ports, the worker
/// as a child process.
@Suite("Delivery", .enabled(if: TestEnvironment.integrationEnabled))
struct DeliveryTests {
    func setUp(
        webhook: String, retry: String = "{num_retries: 0, interval_sec: 0, timeout_sec: 5}", worker: String = "",
        environment: [String: String] = [:], extraTrigger: String = ""
    ) throws -> WorkerFixture {
        try WorkerFixture(
            webhook: webhook, retry: retry, worker: worker, environment: environment, extraTrigger: extraTrigger)
    }

    @Test func everyEventIsDeliveredWithHasuraPayloadAndSignedHeaders() throws {
        let receiver = try Receiver()
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let setup = try setUp(
            webhook: receiver.url("/ok"), environment: ["TEST_SECRET": secret])
        // Signing is configured through the environment, as in production.
        let signedYAML = try String(contentsOfFile: setup.configPath, encoding: .utf8)
            .replacingOccurrences(of: "webhook: ", with: "signing: {secret_from_env: TEST_SECRET}\n        webhook: ")
        try signedYAML.write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        try setup.insert(20)
        let worker = try WorkerProcess(configPath: setup.configPath, environment: ["TEST_SECRET": secret])
        #expect(try eventually { try setup.count("status = 'delivered'") == 20 }, "\(worker.log)")
        let requests = try receiver.requests()
        #expect(requests.count == 20)
        let key = try #require(WebhookSignature.decodeSecret(secret))
        var names: Set<String> = []
        for request in requests {
            let payload = try #require(
                try JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any])
            let id = try #require(payload["id"] as? String)
            #expect(request.header("webhook-id") == id)
            #expect(request.header("content-type") == "application/json")
            #expect(request.header("user-agent") == "herald/\(Herald.version)")
            let timestamp = try #require(request.header("webhook-timestamp").flatMap(Int.init))
            #expect(abs(Double(timestamp) - Date().timeIntervalSince1970) < 60)
            #expect(
                request.header("webhook-signature")
                    == WebhookSignature.sign(key: key, messageID: id, timestamp: timestamp, body: Array(request.body.utf8)))
            #expect((payload["trigger"] as? [String: String]) == ["name": "items_hook"])
            #expect((payload["table"] as? [String: String]) == ["schema": "public", "name": "items"])
            #expect((payload["delivery_info"] as? [String: Int]) == ["max_retries": 0, "current_retry": 0])
            let event = try #require(payload["event"] as? [String: Any])
            #expect(event["op"] as? String == "INSERT")
            let data = try #require(event["data"] as? [String: Any])
            #expect(data["old"] is NSNull)
            names.insert(((data["new"] as? [String: Any])?["name"] as? String) ?? "")
            #expect((payload["created_at"] as? String)?.hasSuffix("Z") == true)
        }
        #expect(names.count == 20)
        #expect(try setup.count("locked_by IS NOT NULL") == 0)
        #expect(worker.terminate() == 0)
    }

    @Test func receiverFailingTwiceGetsThreeAttemptsAndEndsDelivered() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/flaky/2"), retry: "{num_retries: 5, interval_sec: 0, timeout_sec: 5}")
        try setup.insert(1)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'delivered'") == 1 }, "\(worker.log)")
        #expect(try setup.count("tries = 3") == 1)
        let invocations = try setup.invocations()
        #expect(invocations.map(\.attempt) == [1, 2, 3])
        #expect(invocations.map(\.status) == [500, 500, 200])
        #expect(invocations.map(\.errorClass) == ["http", "http", nil])
        let retries = try receiver.requests().map {
            (try JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? [String: Any])?["delivery_info"]
                as? [String: Int]
        }
        #expect(retries.map { $0?["current_retry"] } == [0, 1, 2])
        #expect(Set(try receiver.requests().compactMap { $0.header("webhook-id") }).count == 1)
        #expect(worker.terminate() == 0)
    }

    @Test func alwaysFailingReceiverEndsFailedAfterAllAttempts() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/status/500"), retry: "{num_retries: 2, interval_sec: 0, timeout_sec: 5}")
        try setup.insert(1)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'failed'") == 1 }, "\(worker.log)")
        #expect(try setup.count("tries = 3 AND last_status_code = 500 AND finished_at IS NOT NULL") == 1)
        #expect(try setup.invocations().map(\.status) == [500, 500, 500])
        Thread.sleep(forTimeInterval: 0.5)
        #expect(try receiver.stats().count == 3)
        #expect(worker.terminate() == 0)
    }

    @Test func clientErrorIsRetriedLikeHasura() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/status/404"), retry: "{num_retries: 1, interval_sec: 0, timeout_sec: 5}")
        try setup.insert(1)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'failed'") == 1 }, "\(worker.log)")
        #expect(try setup.invocations().map(\.status) == [404, 404])
        #expect(worker.terminate() == 0)
    }

    @Test func retryAfterIsHonoured() throws {
        let receiver = try Receiver()
        let setup = try setUp(
            webhook: receiver.url("/retry-after/2"), retry: "{num_retries: 3, interval_sec: 0, timeout_sec: 5}")
        try setup.insert(1)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'delivered'") == 1 }, "\(worker.log)")
        let times = try receiver.requests().map(\.time)
        #expect(times.count == 2)
        #expect(times[1] - times[0] >= 1.9)
        #expect(try setup.invocations().map(\.status) == [503, 200])
        #expect(worker.terminate() == 0)
    }

    @Test func slowReceiverTimesOutAndIsRetried() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/sleep/3000"), retry: "{num_retries: 1, interval_sec: 0, timeout_sec: 1}")
        try setup.insert(1)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'failed'") == 1 }, "\(worker.log)")
        let invocations = try setup.invocations()
        #expect(invocations.map(\.errorClass) == ["timeout", "timeout"])
        let durations = try setup.connection.query("SELECT duration_ms FROM herald.invocation_log").column(0)
            .compactMap { $0.flatMap(Double.init) }
        #expect(durations.allSatisfy { $0 >= 900 && $0 < 2500 })
        #expect(worker.terminate() == 0)
    }

    @Test func connectionRefusedIsAnErrorClassNotACrash() throws {
        let setup = try setUp(webhook: "http://127.0.0.1:1/refused", retry: "{num_retries: 1, interval_sec: 0, timeout_sec: 5}")
        try setup.insert(3)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'failed'") == 3 }, "\(worker.log)")
        #expect(try setup.invocations().allSatisfy { $0.errorClass == "connection" && $0.status == nil })
        #expect(try setup.connection.query("SELECT last_error FROM herald.event_log LIMIT 1")[0, 0]?.contains("127.0.0.1") == true)
        #expect(worker.process.isRunning)
        #expect(worker.terminate() == 0)
    }

    @Test func redirectsAreFailuresAndNotFollowed() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/redirect"))
        try setup.insert(1)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'failed'") == 1 }, "\(worker.log)")
        #expect(try setup.invocations().map(\.errorClass) == ["redirect"])
        #expect(try receiver.requests().map(\.path) == ["/redirect"])
        #expect(worker.terminate() == 0)
    }

    @Test func hugeResponseBodyIsCappedAndSlowBodyWithinTimeoutSucceeds() throws {
        let receiver = try Receiver()
        let setup = try setUp(
            webhook: receiver.url("/huge/20000000"), worker: "stored_response_bytes: 100, max_response_bytes: 1000",
            extraTrigger: """
                  - table: {schema: public, name: items}
                    event_triggers:
                      - name: slow_body
                        definition: {insert: {columns: "*"}}
                        retry_conf: {num_retries: 0, timeout_sec: 5}
                        webhook: \(receiver.url("/slowbody/1000"))
                """)
        try setup.insert(1)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'delivered'") == 2 }, "\(worker.log)")
        let bodies = try setup.invocations().compactMap(\.body).sorted { $0.count > $1.count }
        #expect(bodies.map(\.count) == [100, 10])
        #expect(worker.terminate() == 0)
    }

    @Test(arguments: [1, 3])
    func perHostLimitIsNeverExceeded(threads: Int) throws {
        let receiver = try Receiver()
        let setup = try setUp(
            webhook: receiver.url("/sleep/200"), worker: "http_per_host_limit: 3, http_pool_size: 20, http_threads: \(threads)")
        try setup.insert(24)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually(timeout: 30) { try setup.count("status = 'delivered'") == 24 }, "\(worker.log)")
        #expect(try receiver.stats().max_concurrency == 3)
        #expect(worker.terminate() == 0)
    }

    @Test func twoWorkersDeliverEveryEventOnceBetweenThem() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/ok"), worker: "fetch_batch_size: 20, http_threads: 2")
        try setup.insert(600)
        let first = try WorkerProcess(configPath: setup.configPath)
        let second = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually(timeout: 60) { try setup.count("status = 'delivered'") == 600 }, "\(first.log)")
        let ids = try receiver.requests().compactMap { $0.header("webhook-id") }
        #expect(ids.count == 600)
        #expect(Set(ids).count == 600)
        let workers = try setup.connection.query(
            "SELECT count(DISTINCT (request_headers->>'User-Agent')) FROM herald.invocation_log")
        #expect(workers[0, 0] == "1")
        #expect(first.terminate() == 0)
        #expect(second.terminate() == 0)
    }

    @Test func workerKilledMidBatchLosesNothing() throws {
        let receiver = try Receiver()
        let setup = try setUp(
            webhook: receiver.url("/sleep/1500"), retry: "{num_retries: 0, interval_sec: 0, timeout_sec: 2}",
            worker: "lease_seconds: 3")
        try setup.insert(30)
        let victim = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try receiver.stats().count >= 10 })
        victim.killHard()
        #expect(try setup.count("status = 'pending' AND locked_by IS NOT NULL") > 0)
        let rescuer = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually(timeout: 30) { try setup.count("status = 'delivered'") == 30 }, "\(rescuer.log)")
        let ids = Set(try receiver.requests().compactMap { $0.header("webhook-id") })
        #expect(ids.count == 30)
        #expect(rescuer.terminate() == 0)
    }

    @Test func sigtermFinishesInFlightAndLeavesNoLease() throws {
        let receiver = try Receiver()
        let setup = try setUp(
            webhook: receiver.url("/sleep/700"), worker: "http_pool_size: 5, fetch_batch_size: 5, shutdown_grace_seconds: 10")
        try setup.insert(40)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try receiver.stats().count >= 5 })
        #expect(worker.terminate() == 0)
        #expect(try setup.count("locked_by IS NOT NULL OR locked_at IS NOT NULL") == 0)
        let delivered = try setup.count("status = 'delivered'")
        #expect(delivered >= 5)
        #expect(try setup.count("status = 'pending' AND next_attempt_at <= now()") == 40 - delivered)
        #expect(worker.log.contains("herald worker stopped"))
    }

    @Test func databaseRestartDuringDeliveryLosesNothing() throws {
        let server = try DedicatedPostgres()
        let receiver = try Receiver()
        let connection = try PGConnection(url: server.url)
        try connection.execute(script: "CREATE TABLE items (id serial PRIMARY KEY, name text)")
        let yaml = workerConfigYAML(
            databaseURL: server.url, webhook: receiver.url("/sleep/300"),
            retry: "{num_retries: 3, interval_sec: 0, timeout_sec: 5}", worker: "http_pool_size: 10, fetch_batch_size: 10")
        let path = try temporaryFile(yaml)
        try TriggerInstaller(
            config: try ConfigLoader.parse(yaml: yaml, file: path, environment: [:]), logger: Logger(label: "test")
        ).install(connection)
        try connection.execute(script: "INSERT INTO items (name) SELECT 'n' FROM generate_series(1, 100)")
        let worker = try WorkerProcess(configPath: path)
        #expect(try eventually { try receiver.stats().count >= 20 })
        try server.stop()
        Thread.sleep(forTimeInterval: 2)
        try server.start()
        let check = try PGConnection(url: server.url)
        #expect(
            try eventually(timeout: 60) {
                try check.query("SELECT count(*) FROM herald.event_log WHERE status = 'delivered'")[0, 0] == "100"
            }, "\(worker.log)")
        #expect(Set(try receiver.requests().compactMap { $0.header("webhook-id") }).count == 100)
        #expect(worker.log.contains("reconnect") || worker.log.contains("retrying"))
        #expect(worker.process.isRunning)
        #expect(worker.terminate() == 0)
    }

    @Test func notifyWakesAnIdleWorkerWellInsideThePollInterval() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/ok"), worker: "fetch_interval_ms: 20000")
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(eventually { worker.log.contains("herald worker started") })
        Thread.sleep(forTimeInterval: 1)
        let started = Date()
        try setup.insert(1)
        #expect(try eventually(timeout: 10) { try receiver.stats().count == 1 })
        #expect(Date().timeIntervalSince(started) < 2)
        #expect(worker.terminate() == 0)
    }

    @Test func eventsOfAnUnconfiguredTriggerStayPendingAndAreReported() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/ok"))
        try setup.connection.execute(
            script: """
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload)
                VALUES ('retired_trigger', 'public', 'items', '{"op": "INSERT"}')
                """)
        try setup.insert(2)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'delivered'") == 2 }, "\(worker.log)")
        #expect(try setup.count("trigger_name = 'retired_trigger' AND status = 'pending' AND locked_by IS NULL") == 1)
        #expect(worker.log.contains("pending events for a trigger not in the configuration"))
        #expect(worker.log.contains("retired_trigger"))
        #expect(try receiver.stats().count == 2)
        #expect(worker.terminate() == 0)
    }

    @Test func workerRefusesADatabaseWithoutHeraldsSchema() throws {
        let database = try TestDatabase()
        let path = try temporaryFile(workerConfigYAML(databaseURL: database.url, webhook: "http://127.0.0.1:9/x"))
        let worker = try WorkerProcess(configPath: path)
        #expect(worker.waitForExit(timeout: 20) == 1)
        #expect(worker.log.contains("this database has no Herald schema yet (herald.event_log): run herald install-triggers first"))
        #expect(worker.log.contains("run herald install-triggers"))
    }

    @Test func claimQueryUsesThePerTriggerIndexBehindAnotherTriggersBacklog() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        _ = try connection.transaction { try SchemaMigrator.apply(connection) }
        // 200k finished rows and a 100k-event backlog of another trigger, all older than
        // the 50 events of trigger t: the claim for t must not read any of them.
        try connection.execute(
            script: """
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, status, tries)
                SELECT 't', 'public', 'x', '{}', 'delivered', 1 FROM generate_series(1, 200000);
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, next_attempt_at)
                SELECT 'busy', 'public', 'x', '{}', now() - interval '1 hour' FROM generate_series(1, 100000);
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload)
                SELECT 't', 'public', 'x', '{}' FROM generate_series(1, 50);
                ANALYZE herald.event_log;
                """)
        let plan = try connection.query(
            "EXPLAIN (FORMAT TEXT) " + EventStore.claimCandidatesSQL.replacingOccurrences(of: "$1", with: "'t'")
        ).column(0).compactMap { $0 }.joined(separator: "\n")
        #expect(plan.contains("event_log_pending_trigger_due"), "\(plan)")
        #expect(!plan.contains("Seq Scan"), "\(plan)")
        // The whole statement too, with and without the key walk: the outer UPDATE must find
        // the rows by primary key.
        for (sql, extra) in [(EventStore.unkeyedClaimSQL, [String]()), (EventStore.claimSQL, ["{\"\",\"\"}"])] {
            let statementPlan = try connection.query(
                "EXPLAIN (FORMAT TEXT) " + sql, ["{100,10}", "w", "60", "{t,busy}"] + extra
            ).column(0).compactMap { $0 }.joined(separator: "\n")
            #expect(!statementPlan.contains("Seq Scan on event_log"), "\(statementPlan)")
            #expect(statementPlan.contains("event_log_pkey"), "\(statementPlan)")
            #expect(statementPlan.contains("event_log_pending_trigger_due"), "\(statementPlan)")
        }
        let store = EventStore(connection: connection)
        // The plans above are the speed check (a clock here would measure the machine).
        let claimed = try store.claimBatch(limits: ["t": 100, "busy": 10], workerID: "w", leaseSeconds: 60)
        #expect(claimed.filter { $0.triggerName == "t" }.count == 50)
        #expect(claimed.filter { $0.triggerName == "busy" }.count == 10)
        #expect(Set(claimed.map(\.leaseToken)).count == 1)
        #expect(claimed.allSatisfy { $0.leaseToken > 0 })
    }
}
