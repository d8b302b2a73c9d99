import Foundation
import Herald
import Logging
import Testing

/// One worker serving several databases (`sources:`): both deliver, one down does not stop
/// the other and is reported, it catches up when it returns, a flood does not starve a
/// trickle, and the commands take `--source`.
@Suite("Sources", .enabled(if: TestEnvironment.integrationEnabled))
struct SourcesTests {
    /// A `sources:` config: each source has trigger `hook` (the same name in both) on its own table.
    static func yaml(
        _ sources: [(name: String, url: String, table: String, webhook: String)], statsPort: Int? = nil,
        worker: String = "fetch_interval_ms: 100, recorder_flush_interval_ms: 5, lease_seconds: 30"
    ) -> String {
        var text = "worker: {\(worker)}\n"
        text += "stats: {listen: '\(statsPort.map { "127.0.0.1:\($0)" } ?? "")'}\n"
        text += "sources:\n"
        for source in sources {
            text += """
                  - name: \(source.name)
                    database: {url: '\(source.url)'}
                    tables:
                      - table: {schema: public, name: \(source.table)}
                        event_triggers:
                          - name: hook
                            definition: {insert: {columns: "*"}, enable_manual: true}
                            retry_conf: {num_retries: 3, interval_sec: 1, timeout_sec: 5}
                            webhook: \(source.webhook)

                """
        }
        return text
    }

    static func count(_ connection: PGConnection, _ condition: String) throws -> Int {
        Int(try connection.query("SELECT count(*) FROM herald.event_log WHERE \(condition)")[0, 0] ?? "") ?? -1
    }

    static func insert(_ connection: PGConnection, table: String, _ count: Int) throws {
        try connection.query(
            "INSERT INTO \(table) (name) SELECT 'row ' || g FROM generate_series(1, $1::int) g", [String(count)])
    }

    @Test func aStoppedSourceIsReportedWhileTheOtherDeliversAndItCatchesUpAfterwards() throws {
        let main = try TestDatabase()
        let billingServer = try DedicatedPostgres()
        let receiver = try Receiver()
        let mainConnection = try main.connect()
        try mainConnection.execute(script: "CREATE TABLE items (id serial PRIMARY KEY, name text)")
        try PGConnection(url: billingServer.url).execute(
            script: "CREATE TABLE invoices (id serial PRIMARY KEY, name text)")
        let port = try freePort()
        // Billing's receiver is slow, so that the server stops while its deliveries are in flight.
        let path = try temporaryFile(
            Self.yaml(
                [
                    ("main", main.url, "items", receiver.url("/ok")),
                    ("billing", billingServer.url, "invoices", receiver.url("/sleep/400")),
                ], statsPort: port))
        let install = try runHerald(["install-triggers", "--config", path])
        #expect(install.status == 0, "\(install.stderr)")
        #expect(install.stdout.contains("source main:") && install.stdout.contains("source billing:"))

        let worker = try WorkerProcess(configPath: path)
        let base = "http://127.0.0.1:\(port)"
        try Self.insert(mainConnection, table: "items", 20)
        try Self.insert(PGConnection(url: billingServer.url), table: "invoices", 20)
        #expect(try eventually { try Self.count(mainConnection, "status = 'delivered'") == 20 }, "\(worker.log)")
        #expect(
            try eventually { try Self.count(PGConnection(url: billingServer.url), "status = 'delivered'") == 20 },
            "\(worker.log)")
        let ready = try httpGet("\(base)/readyz")
        #expect(ready.status == 200 && ready.body.contains("source main: ready") && ready.body.contains("source billing: ready"))

        // Billing goes down with deliveries in flight: their outcomes wait for it.
        try Self.insert(PGConnection(url: billingServer.url), table: "invoices", 10)
        #expect(try eventually(timeout: 5) { try receiver.requests().filter { $0.body.contains("invoices") }.count > 20 })
        try billingServer.stop()
        try Self.insert(mainConnection, table: "items", 30)
        #expect(try eventually { try Self.count(mainConnection, "status = 'delivered'") == 50 }, "\(worker.log)")
        var readyz = (status: 0, body: "")
        #expect(
            try eventually {
                readyz = try httpGet("\(base)/readyz")
                return readyz.body.contains("source billing: not ready")
            }, "\(readyz.body)")
        #expect(readyz.status == 200 && readyz.body.contains("source main: ready"), "\(readyz.body)")
        #expect(try httpGet("\(base)/readyz?source=billing").status == 503)
        #expect(try httpGet("\(base)/readyz?source=main").status == 200)
        let families = try parsePrometheus(try httpGet("\(base)/metrics").body)
        #expect(StatsEndpointTests.value(families, "herald_source_ready", ["source": "billing"]) == 0)
        #expect(StatsEndpointTests.value(families, "herald_source_ready", ["source": "main"]) == 1)
        #expect(
            StatsEndpointTests.value(
                families, "herald_deliveries", ["source": "main", "trigger": "hook", "outcome": "delivered"],
                sample: "herald_deliveries_total") == 50)

        // Back: the unwritten outcomes are written and nothing of billing's is lost.
        try billingServer.start()
        let billing = try PGConnection(url: billingServer.url)
        try Self.insert(billing, table: "invoices", 5)
        #expect(try eventually(timeout: 40) { try Self.count(billing, "status = 'delivered'") == 35 }, "\(worker.log)")
        #expect(try Self.count(billing, "status <> 'delivered'") == 0)
        #expect(try eventually { try httpGet("\(base)/readyz?source=billing").status == 200 })
        // Every billing event reached the receiver (some perhaps twice: at least once).
        let billingIDs = Set(try receiver.requests().filter { $0.body.contains("invoices") }.compactMap { $0.header("webhook-id") })
        #expect(billingIDs.count == 35)
        #expect(worker.terminate() == 0)
    }

    @Test func aFloodedSourceDoesNotStarveATrickle() throws {
        let flood = try TestDatabase()
        let trickle = try TestDatabase()
        let receiver = try Receiver()
        let floodConnection = try flood.connect()
        let trickleConnection = try trickle.connect()
        try floodConnection.execute(script: "CREATE TABLE items (id serial PRIMARY KEY, name text)")
        try trickleConnection.execute(script: "CREATE TABLE pings (id serial PRIMARY KEY, name text)")
        // A small pool and a slow receiver for the flood: 10 slots, 100 ms per request, so its
        // backlog of 2,000 takes about 20 s and holds the whole pool throughout.
        let path = try temporaryFile(
            Self.yaml(
                [
                    ("flood", flood.url, "items", receiver.url("/sleep/100")),
                    ("trickle", trickle.url, "pings", receiver.url("/ok")),
                ],
                worker: "http_pool_size: 10, fetch_batch_size: 10, fetch_interval_ms: 1000, recorder_flush_interval_ms: 5, lease_seconds: 60"
            ))
        #expect(try runHerald(["install-triggers", "--config", path]).status == 0)
        try Self.insert(floodConnection, table: "items", 2000)
        let worker = try WorkerProcess(configPath: path)
        #expect(try eventually { try Self.count(floodConnection, "status = 'delivered'") > 50 }, "\(worker.log)")
        for _ in 0..<10 {
            try Self.insert(trickleConnection, table: "pings", 1)
            Thread.sleep(forTimeInterval: 0.3)
        }
        #expect(try eventually { try Self.count(trickleConnection, "status = 'delivered'") == 10 }, "\(worker.log)")
        // The flood still had a backlog the whole time: the trickle competed for the pool.
        #expect(try Self.count(floodConnection, "status = 'pending'") > 500)
        let latencies = try trickleConnection.query(
            """
            SELECT extract(epoch FROM i.created_at - e.created_at) FROM herald.event_log e
            JOIN herald.invocation_log i ON i.event_id = e.id
            """
        ).column(0).compactMap { $0.flatMap(Double.init) }
        #expect(latencies.count == 10)
        // Starved, a ping would wait for the flood's queue (seconds); served fairly, it waits
        // for one slot to free up (100 ms) and a claim.
        #expect((latencies.max() ?? 99) < 1.0, "trickle latencies: \(latencies)")
        _ = worker.terminate()
    }

    @Test func commandsTakeSourceAndRequireItWhereOneDatabaseIsMeant() throws {
        let one = try TestDatabase()
        let two = try TestDatabase()
        let receiver = try Receiver()
        for database in [one, two] {
            try database.connect().execute(script: "CREATE TABLE items (id serial PRIMARY KEY, name text)")
        }
        let path = try temporaryFile(
            Self.yaml([
                ("one", one.url, "items", receiver.url("/ok")), ("two", two.url, "items", receiver.url("/status/500")),
            ]))
        #expect(try runHerald(["install-triggers", "--config", path, "--source", "two"]).status == 0)
        // Only two's database got Herald's schema.
        #expect(try one.values("SELECT count(*) FROM pg_namespace WHERE nspname = 'herald'") == ["0"])
        #expect(try runHerald(["install-triggers", "--config", path]).status == 0)
        try Self.insert(two.connect(), table: "items", 2)

        let check = try runHerald(["check-config", "--config", path])
        #expect(check.status == 0 && check.stdout.contains("sources: 2") && check.stdout.contains("source two:"))
        let all = try runHerald(["stats", "--config", path, "--json"])
        let document = try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [String: Any]
        #expect(Set(document?.keys.map { $0 } ?? []) == ["one", "two"], "\(all.stdout) \(all.stderr)")
        let stats = try runHerald(["stats", "--config", path, "--source", "two"])
        #expect(stats.status == 0 && stats.stdout.contains("hook"), "\(stats.stderr)")

        let ambiguous = try runHerald(["skip-event", "--config", path, "1"])
        #expect(ambiguous.status == 64)
        #expect(ambiguous.stderr.contains("several sources (one, two)"), "\(ambiguous.stderr)")
        let unknown = try runHerald(["stats", "--config", path, "--source", "three"])
        #expect(unknown.status == 64 && unknown.stderr.contains("no source named 'three'"), "\(unknown.stderr)")

        // Event 1 exists in two's log only: --source picks the database.
        let wrong = try runHerald(["redeliver-event", "--config", path, "--source", "one", "1"])
        #expect(wrong.status != 0)
        let right = try runHerald(["redeliver-event", "--config", path, "--source", "two", "1"])
        #expect(right.status == 0, "\(right.stderr)")
    }
}
