import Foundation
import Logging
import Testing

@testable import Herald

/// The worker's HTTP surface, against a real worker, database and receiver.
@Suite("Stats endpoint", .enabled(if: TestEnvironment.integrationEnabled))
struct StatsEndpointTests {
    @Test func endpointsAnswerWithParsedMetricsAndReadinessFollowsTheDatabase() throws {
        let server = try DedicatedPostgres()
        let receiver = try Receiver()
        let connection = try PGConnection(url: server.url)
        try connection.execute(script: "CREATE TABLE items (id serial PRIMARY KEY, name text)")
        let port = try freePort()
        let yaml = workerConfigYAML(databaseURL: server.url, webhook: receiver.url("/ok"))
            .replacingOccurrences(of: #"stats: {listen: ""}"#, with: "stats: {listen: '127.0.0.1:\(port)', bearer_token_env: STATS_TOKEN}")
        let path = try temporaryFile(yaml)
        let environment = ["STATS_TOKEN": "t0ken-secret"]
        try TriggerInstaller(
            config: try ConfigLoader.parse(yaml: yaml, file: path, environment: environment), logger: Logger(label: "t")
        ).install(connection)
        try connection.execute(script: "INSERT INTO items (name) SELECT 'x' FROM generate_series(1, 25)")
        let worker = try WorkerProcess(configPath: path, environment: environment)
        let base = "http://127.0.0.1:\(port)"
        let auth = ["Authorization: Bearer t0ken-secret"]

        #expect(try eventually { try httpGet("\(base)/healthz").status == 200 }, "\(worker.log)")
        #expect(
            try eventually {
                try connection.query("SELECT count(*) FROM herald.event_log WHERE status = 'delivered'")[0, 0] == "25"
            })
        #expect(try httpGet("\(base)/metrics").status == 401)
        // Served without Hummingbird's once-a-second date timer: each response dates itself.
        let probe = try httpCall("\(base)/healthz")
        #expect(probe.headers["server"] == "herald")
        let date = try #require(probe.headers["date"])
        #expect(date.hasSuffix(" GMT") && date.count == 29, "\(date)")
        #expect(try httpCall("\(base)/no-such-path", headers: auth).status == 404)
        #expect(try httpGet("\(base)/stats", headers: ["Authorization: Bearer wrong"]).status == 401)
        #expect(try eventually { try httpGet("\(base)/readyz", headers: auth).status == 200 })

        // Queue depth refreshes on an interval; wait for the delivered count to show.
        var families: [String: [String: Any]] = [:]
        #expect(
            try eventually {
                let metrics = try httpGet("\(base)/metrics", headers: auth)
                guard metrics.status == 200 else { return false }
                families = try parsePrometheus(metrics.body)
                return Self.value(families, "herald_queue_depth", ["trigger": "items_hook", "status": "delivered"]) == 25
            })
        #expect(families["herald_events_claimed"]?["type"] as? String == "counter")
        #expect(Self.value(families, "herald_events_claimed", [:], sample: "herald_events_claimed_total") == 25)
        #expect(
            Self.value(
                families, "herald_deliveries", ["trigger": "items_hook", "outcome": "delivered"],
                sample: "herald_deliveries_total") == 25)
        for histogram in [
            "herald_delivery_duration_seconds", "herald_end_to_end_latency_seconds", "herald_claim_duration_seconds",
            "herald_recorder_flush_duration_seconds",
        ] {
            #expect(families[histogram]?["type"] as? String == "histogram", "\(histogram)")
        }
        #expect(
            Self.value(
                families, "herald_end_to_end_latency_seconds", ["trigger": "items_hook"],
                sample: "herald_end_to_end_latency_seconds_count") == 25)
        #expect(families["herald_in_flight"]?["type"] as? String == "gauge")
        #expect(families["herald_recorder_flush_size"] != nil)
        // The resident set and the allocator's heap, for watching memory over months.
        for gauge in ["herald_resident_memory_bytes", "herald_heap_in_use_bytes", "herald_heap_free_bytes"] {
            #expect(families[gauge]?["type"] as? String == "gauge", "\(gauge)")
        }
        #expect((Self.value(families, "herald_resident_memory_bytes", [:]) ?? 0) > 1_048_576)
        #expect((Self.value(families, "herald_heap_in_use_bytes", [:]) ?? 0) > 0)

        let stats = try httpGet("\(base)/stats", headers: auth)
        #expect(stats.status == 200)
        #expect(!stats.body.contains("t0ken-secret"))
        let document = try #require(try JSONSerialization.jsonObject(with: Data(stats.body.utf8)) as? [String: Any])
        #expect((document["worker_id"] as? String)?.isEmpty == false)
        #expect(document["version"] as? String == Herald.version)
        let memory = try #require(document["memory"] as? [String: Any])
        #expect((memory["resident_bytes"] as? Int ?? 0) > 1 << 20)
        #expect((memory["heap_in_use_bytes"] as? Int ?? 0) > 0)
        // The herald binary runs on jemalloc (linked in, not preloaded), and reads its figures.
        #expect(memory["allocator"] as? String == "jemalloc")
        #expect((document["fetch"] as? [String: Any])?["delivered"] as? Int == 25)
        let trigger = try #require((document["triggers"] as? [String: Any])?["items_hook"] as? [String: Any])
        #expect(trigger["delivered"] as? Int == 25)
        #expect(trigger["latency_ms_p50"] as? Double != nil)
        #expect(((document["config"] as? [String: Any])?["triggers"] as? [[String: Any]])?.first?["name"] as? String == "items_hook")

        try server.stop()
        #expect(try eventually(timeout: 20) { try httpGet("\(base)/readyz", headers: auth).status == 503 }, "\(worker.log)")
        #expect(try httpGet("\(base)/readyz", headers: auth).body.contains("database unreachable"))
        #expect(try httpGet("\(base)/healthz").status == 200)
        try server.start()
        #expect(try eventually(timeout: 30) { try httpGet("\(base)/readyz", headers: auth).status == 200 }, "\(worker.log)")
        #expect(worker.terminate() == 0)
    }

    static func value(
        _ families: [String: [String: Any]], _ family: String, _ labels: [String: String], sample: String? = nil
    ) -> Double? {
        guard let samples = families[family]?["samples"] as? [[Any]] else { return nil }
        for entry in samples {
            guard entry.count == 3, let name = entry[0] as? String, let sampleLabels = entry[1] as? [String: String]
            else { continue }
            if name == (sample ?? family) && labels.allSatisfy({ sampleLabels[$0.key] == $0.value }) {
                return (entry[2] as? NSNumber)?.doubleValue
            }
        }
        return nil
    }

    /// A worker fixture whose stats.listen is an address already taken (by the receiver,
    /// standing in for a running worker).
    func fixtureOnATakenAddress() throws -> (Receiver, WorkerFixture) {
        let receiver = try Receiver()
        let fixture = try WorkerFixture(webhook: receiver.url("/ok"))
        let yaml = try String(contentsOfFile: fixture.configPath, encoding: .utf8)
            .replacingOccurrences(of: #"stats: {listen: ""}"#, with: "stats: {listen: '127.0.0.1:\(receiver.port)'}")
        try yaml.write(toFile: fixture.configPath, atomically: true, encoding: .utf8)
        return (receiver, fixture)
    }

    @Test func statsAddressInUseStopsTheWorkerWithAnError() throws {
        let (receiver, fixture) = try fixtureOnATakenAddress()
        let worker = try WorkerProcess(configPath: fixture.configPath)
        let status = worker.waitForExit(timeout: 30)
        #expect(status != nil && status != 0, "\(worker.log)")
        #expect(
            worker.log.contains(
                "herald: error: stats endpoint cannot listen on 127.0.0.1:\(receiver.port): address already in use;"
                    + " the address is stats.listen"),
            "\(worker.log)")
        #expect(try fixture.count("locked_by IS NOT NULL") == 0)
    }

    @Test func consoleOnAWorkersAddressSaysWhichAddressWhyAndToPassListen() throws {
        let (receiver, fixture) = try fixtureOnATakenAddress()
        let console = try runHerald(["console", "--config", fixture.configPath])
        #expect(console.status != 0)
        #expect(
            console.stderr.contains(
                "herald: error: herald console cannot listen on 127.0.0.1:\(receiver.port): address already in use;"
                    + " the address is stats.listen (the default without --listen)"),
            "\(console.stderr)")
        #expect(console.stderr.contains("pass --listen HOST:PORT"))
        #expect(!console.stderr.contains("errno"))
    }
}
