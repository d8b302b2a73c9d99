import Foundation
import Testing

@testable import Herald

/// A database with an `items` table captured by `items_changes` (delivered to a real
/// receiver: the stream reads beside delivery, changing nothing), and a worker listening on
/// loopback, optionally with a bearer token.
struct StreamFixture {
    let url: String
    /// What keeps the database alive: a database on the shared server, or a server of its own.
    let owner: AnyObject?
    let connection: PGConnection
    let receiver: Receiver
    let configPath: String
    let base: String
    let listen: String
    let token: String?

    /// A configured secret (the webhook's header value) that a test may plant in a row.
    static let plantedSecret = "stream-planted-secret-7f3a"

    init(token: String? = nil, listenHost: String = "127.0.0.1", statsExtra: String = "", server: DedicatedPostgres? = nil) throws {
        if let server {
            url = server.url
            owner = server
        } else {
            let database = try TestDatabase()
            url = database.url
            owner = database
        }
        connection = try PGConnection(url: url)
        receiver = try Receiver()
        self.token = token
        try connection.execute(
            script: "CREATE TABLE items (id serial PRIMARY KEY, writer int NOT NULL DEFAULT 0, txn int NOT NULL DEFAULT 0, n int NOT NULL)")
        let port = try freePort()
        listen = "\(listenHost):\(port)"
        base = "http://127.0.0.1:\(port)"
        let yaml = """
            database: {url: '\(url)'}
            worker: {fetch_interval_ms: 100, recorder_flush_interval_ms: 5, stats_log_interval_seconds: 1}
            stats: {listen: "\(listen)"\(token == nil ? "" : ", bearer_token_env: STREAM_TEST_TOKEN")\(statsExtra)}
            tables:
              - table: {schema: public, name: items}
                event_triggers:
                  - name: items_changes
                    definition: {insert: {columns: "*"}, update: {columns: "*"}}
                    webhook: \(receiver.url("/items"))
                    headers: [{name: X-Key, value_from_env: STREAM_PLANTED_SECRET}]
            """
        configPath = try temporaryFile(yaml)
        let install = try runHerald(["install-triggers", "--config", configPath], environment: environment)
        guard install.status == 0 else { throw ReceiverError(message: "install-triggers failed: \(install.stderr)") }
    }

    func connect() throws -> PGConnection { try PGConnection(url: url) }

    var environment: [String: String] {
        ["STREAM_PLANTED_SECRET": Self.plantedSecret].merging(token.map { ["STREAM_TEST_TOKEN": $0] } ?? [:]) { $1 }
    }

    /// A worker, once its listener answers (with a token, /readyz would need it too: wait
    /// for /healthz and then for the LISTEN the stream's wake-ups come from).
    func worker() throws -> WorkerProcess {
        let worker = try WorkerProcess(
            configPath: configPath, environment: environment.merging(["HERALD_STATS_LISTEN": listen]) { $1 },
            readiness: false)
        if token == nil {
            let ready = try eventually(timeout: 30) { try httpGet("\(base)/readyz").status == 200 }
            guard ready else { throw ReceiverError(message: "worker not ready: \(worker.log.suffix(2000))") }
        } else {
            let ready = try eventually(timeout: 30) {
                try httpGet("\(base)/readyz", headers: ["Authorization: Bearer \(token ?? "")"]).status == 200
            }
            guard ready else { throw ReceiverError(message: "worker not ready: \(worker.log.suffix(2000))") }
        }
        return worker
    }

    /// One JSON long poll: the events and the cursor after them.
    func poll(after: String?, batch: Int = 100, waitMs: Int = 0, expect status: Int = 200) throws -> (events: [[String: Any]], cursor: String, body: String) {
        var url = "\(base)/v1/stream/items_changes?format=json&batch=\(batch)&wait_ms=\(waitMs)"
        if let after { url += "&after=\(after)" }
        let response = try httpGet(url, headers: token.map { ["Authorization: Bearer \($0)"] } ?? [])
        guard response.status == status else { throw ReceiverError(message: "stream answered \(response.status): \(response.body)") }
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:]
        return (object["events"] as? [[String: Any]] ?? [], object["cursor"] as? String ?? "", response.body)
    }

    static func n(_ event: [String: Any]) -> Int? {
        let payload = event["payload"] as? [String: Any]
        let data = (payload?["event"] as? [String: Any])?["data"] as? [String: Any]
        return (data?["new"] as? [String: Any])?["n"] as? Int
    }
}

@Suite("Stream", .enabled(if: TestEnvironment.integrationEnabled))
struct StreamTests {
    static var clientScript: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../scripts/lib/stream-client.py").standardized.path
    }

    /// The issue's test: a client (the README's Python client) reads 10,000 events over SSE
    /// while four writers commit interleaved transactions, in shuffled commit order, some
    /// holding the lowest ids open while later-numbered ones commit. It drops the connection
    /// three times and resumes with Last-Event-ID. Every event arrives exactly once; each
    /// transaction's events together and in id order; a transaction that began after another
    /// committed comes after it.
    @Test func tenThousandEventsThroughThreeDisconnectsExactlyOnceInCommitOrder() throws {
        let setup = try StreamFixture()
        let worker = try setup.worker()
        let output = try temporaryFile("", suffix: ".jsonl")
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        client.arguments = [
            "python3", Self.clientScript, setup.base, "items_changes", "--out", output, "--disconnect-every", "2600",
            "--stop-after", "10000", "--idle-exit", "20",
        ]
        let errors = Pipe()
        client.standardError = errors
        try client.run()

        // 250 rounds of four transactions of ten rows each, inserted interleaved (so ids
        // alternate between transactions) and committed in a shuffled order.
        let writers = try (0..<4).map { _ in try setup.connect() }
        var generator = SystemRandomNumberGenerator()
        var n = 0
        for round in 0..<250 {
            for writer in writers { try writer.execute(script: "BEGIN") }
            for row in 0..<10 {
                for (index, writer) in writers.enumerated() {
                    n += 1
                    try writer.query(
                        "INSERT INTO items (writer, txn, n) VALUES ($1, $2, $3)", [String(index), String(round * 4 + index), String(n)])
                    _ = row
                }
            }
            for writer in writers.shuffled(using: &generator) {
                try writer.execute(script: "COMMIT")
                // Now and then a pause, so the client reads some transactions of a round
                // before the rest (whose ids may be lower) commit.
                if round % 10 == 0 { Thread.sleep(forTimeInterval: 0.02) }
            }
        }
        client.waitUntilExit()
        let clientLog = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(client.terminationStatus == 0, "\(clientLog)")
        #expect(clientLog.contains("10000 events, 3 reconnects"), "\(clientLog)")

        let received = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
        let rows = received.compactMap { event -> (n: Int, txn: Int, id: String)? in
            let payload = event["payload"] as? [String: Any]
            let new = ((payload?["event"] as? [String: Any])?["data"] as? [String: Any])?["new"] as? [String: Any]
            guard let n = new?["n"] as? Int, let txn = new?["txn"] as? Int, let id = payload?["id"] as? String else { return nil }
            return (n, txn, id)
        }
        #expect(rows.count == 10_000)
        #expect(Set(rows.map(\.n)) == Set(1...10_000), "every event exactly once")
        #expect(Set(rows.map(\.id)).count == 10_000)
        // Each transaction's ten events together, in id (here: n) order.
        var runs: [(txn: Int, ns: [Int])] = []
        for row in rows {
            if runs.last?.txn == row.txn { runs[runs.count - 1].ns.append(row.n) } else { runs.append((row.txn, [row.n])) }
        }
        #expect(runs.count == 1000, "transactions split: \(runs.count) runs")
        #expect(runs.allSatisfy { $0.ns == $0.ns.sorted() })
        // Round r's transactions all committed before round r+1's began: they come first.
        let rounds = runs.map { $0.txn / 4 }
        #expect(rounds == rounds.sorted(), "a round came before an earlier one")
        // Reading changed nothing: delivery went on as usual.
        #expect(try eventually(timeout: 60) { try setup.receiver.stats().count >= 10_000 })
        #expect(worker.terminate() == 0)
    }

    /// Commit order, not id order: an event that commits after a later-numbered one is not
    /// skipped by a reader that has passed that number.
    @Test func anEventCommittedAfterALaterNumberedOneIsNotSkipped() throws {
        let setup = try StreamFixture()
        let worker = try setup.worker()
        let start = try setup.poll(after: "now")
        #expect(start.events.isEmpty)
        let early = try setup.connect()
        let late = try setup.connect()
        try early.execute(script: "BEGIN; INSERT INTO items (n) VALUES (1)")  // the lower id
        try late.execute(script: "BEGIN; INSERT INTO items (n) VALUES (2); COMMIT")
        let first = try setup.poll(after: start.cursor)
        #expect(first.events.compactMap(StreamFixture.n) == [2])
        // Nothing more yet, however often the reader asks.
        let again = try setup.poll(after: first.cursor)
        #expect(again.events.isEmpty)
        try early.execute(script: "COMMIT")
        let second = try setup.poll(after: again.cursor, waitMs: 5000)
        #expect(second.events.compactMap(StreamFixture.n) == [1], "\(second.body)")
        // And each event once: after the last cursor, nothing.
        #expect(try setup.poll(after: second.cursor).events.isEmpty)
        // The first read's cursor, replayed, gives the same events again (read-only).
        let replay = try setup.poll(after: first.cursor)
        #expect(replay.events.compactMap(StreamFixture.n) == [1])
        #expect(worker.terminate() == 0)
    }

    /// Paging: a 250-row transaction read 100 at a time (pages end inside it), from the
    /// oldest cursor; the per-event cursors resume exactly after their event.
    @Test func pagesEndInsideALargeTransactionAndEveryCursorResumesAfterItsEvent() throws {
        let setup = try StreamFixture()
        try setup.connection.execute(script: "INSERT INTO items (n) SELECT g FROM generate_series(1, 250) g")
        let worker = try setup.worker()
        var cursor: String? = nil
        var seen: [Int] = []
        var cursors: [String] = []
        for _ in 0..<4 {
            let page = try setup.poll(after: cursor, batch: 100)
            seen += page.events.compactMap(StreamFixture.n)
            cursors += page.events.compactMap { $0["cursor"] as? String }
            cursor = page.cursor
        }
        #expect(seen == Array(1...250))
        // Resuming from the 137th event's cursor starts at the 138th.
        let resumed = try setup.poll(after: cursors[136], batch: 5)
        #expect(resumed.events.compactMap(StreamFixture.n) == [138, 139, 140, 141, 142])
        // The last event's cursor closes its window: nothing after it.
        #expect(try setup.poll(after: cursors[249]).events.isEmpty)
        #expect(worker.terminate() == 0)
    }

    /// Retention bounds the stream: a cursor that had not served events now deleted gets 410
    /// with the oldest whole cursor, which serves what is left; a cursor past the deletion
    /// is unaffected. A dropped connection mid-stream gets `event: gone`.
    @Test func aCursorOlderThanRetentionGetsGoneWithTheOldestCursor() throws {
        let setup = try StreamFixture()
        try setup.connection.execute(script: "INSERT INTO items (n) SELECT g FROM generate_series(1, 10) g")
        let worker = try setup.worker()
        let beginning = try setup.poll(after: nil, batch: 5)
        #expect(beginning.events.compactMap(StreamFixture.n) == [1, 2, 3, 4, 5])
        let rest = try setup.poll(after: beginning.cursor)
        #expect(rest.events.compactMap(StreamFixture.n) == [6, 7, 8, 9, 10])
        #expect(try eventually(timeout: 30) {
            try Int(setup.connection.query("SELECT count(*) FROM herald.event_log WHERE status = 'delivered'")[0, 0] ?? "") == 10
        })
        try setup.connection.execute(script: "INSERT INTO items (n) SELECT g FROM generate_series(11, 12) g")
        // Retention deletes the ten delivered events.
        try setup.connection.execute(script: "UPDATE herald.event_log SET finished_at = now() - interval '2 days' WHERE (payload #>> '{data,new,n}')::int <= 10")
        let report = try Retention(connection: setup.connection).run(olderThanSeconds: 86_400, scope: .deliveredAndFailed)
        #expect(report.events == 10)

        let gone = try setup.poll(after: beginning.cursor, expect: 410)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(gone.body.utf8)) as? [String: Any])
        let oldest = try #require(body["oldest_cursor"] as? String)
        #expect((body["error"] as? String)?.contains("retention") == true)
        let fromOldest = try setup.poll(after: oldest)
        #expect(fromOldest.events.compactMap(StreamFixture.n) == [11, 12])
        // Without `after`, the stream starts there too.
        #expect(try setup.poll(after: nil).events.compactMap(StreamFixture.n) == [11, 12])
        // A cursor that had served the deleted events is whole.
        #expect(try setup.poll(after: rest.cursor).events.compactMap(StreamFixture.n) == [11, 12])
        // SSE answers 410 before streaming.
        let sse = try httpGet("\(setup.base)/v1/stream/items_changes", headers: ["Last-Event-ID: \(beginning.cursor)"])
        #expect(sse.status == 410)
        #expect(worker.terminate() == 0)
    }

    /// Live: a connected SSE client gets a new commit within a fraction of a second, is
    /// counted in /stats and /metrics, and the worker's graceful stop ends the stream
    /// instead of waiting on it.
    @Test func liveEventsArriveAtOnceClientsAreCountedAndAStopEndsTheStream() throws {
        let setup = try StreamFixture(token: "stream-test-token-abcdef")
        let worker = try setup.worker()
        let output = try temporaryFile("", suffix: ".jsonl")
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        client.arguments = ["python3", Self.clientScript, setup.base, "items_changes", "--after", "now", "--out", output, "--idle-exit", "60"]
        client.environment = ProcessInfo.processInfo.environment.merging(["HERALD_STREAM_TOKEN": "stream-test-token-abcdef"]) { $1 }
        try client.run()
        let auth = ["Authorization: Bearer stream-test-token-abcdef"]
        #expect(try eventually(timeout: 10) { try httpGet("\(setup.base)/metrics", headers: auth).body.contains("herald_stream_clients{trigger=\"items_changes\"} 1") })
        let stats = try httpGet("\(setup.base)/stats", headers: auth).body
        #expect(stats.contains("\"stream_clients\":1"), "\(stats)")
        let overview = try httpGet("\(setup.base)/console", headers: auth).body
        #expect(overview.contains("1 stream client<"), "\(overview.suffix(3000))")
        let committed = Date()
        try setup.connection.execute(script: "INSERT INTO items (n) VALUES (42)")
        #expect(try eventually(timeout: 5) { try String(contentsOfFile: output, encoding: .utf8).contains("\"n\": 42") })
        #expect(Date().timeIntervalSince(committed) < 2)
        // Stopping the worker ends the stream: it exits promptly and cleanly.
        let stopped = Date()
        #expect(worker.terminate(timeout: 20) == 0)
        #expect(Date().timeIntervalSince(stopped) < 10)
        kill(client.processIdentifier, SIGKILL)
        client.waitUntilExit()
    }

    /// The stream's live wake-ups come from the NOTIFYs the claimer hears, so while a client
    /// is connected the claimer keeps the wake gate (sql/017) through a backlog that would
    /// otherwise release it, and the client still hears each new event at once.
    @Test func aConnectedClientKeepsWritersNotifyingThroughABacklog() throws {
        let setup = try StreamFixture()
        let worker = try setup.worker()
        defer { _ = worker.terminate() }
        let output = try temporaryFile("", suffix: ".jsonl")
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        client.arguments = ["python3", Self.clientScript, setup.base, "items_changes", "--after", "now", "--out", output, "--idle-exit", "60"]
        try client.run()
        defer {
            kill(client.processIdentifier, SIGKILL)
            client.waitUntilExit()
        }
        #expect(try eventually(timeout: 10) { try httpGet("\(setup.base)/metrics").body.contains("herald_stream_clients{trigger=\"items_changes\"} 1") })
        let slots = """
            SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
            WHERE l.locktype = 'advisory' AND l.classid = 1213353028 AND l.mode = 'ShareLock' AND l.granted
              AND a.application_name = 'herald-claimer' AND a.datname = current_database()
            """
        try setup.connection.execute(script: "INSERT INTO items (n) SELECT g FROM generate_series(1, 3000) g")
        var samples: [Int] = []
        while try setup.connection.query("SELECT count(*) FROM herald.event_log WHERE status = 'pending'")[0, 0] != "0" {
            samples.append(try setup.connection.query(slots).decode(Int.self, row: 0, column: 0))
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(samples.count >= 2, "the backlog drained before it could be looked at")
        #expect(samples.allSatisfy { $0 == 64 }, "\(samples)")
        let committed = Date()
        try setup.connection.execute(script: "INSERT INTO items (n) VALUES (424242)")
        #expect(try eventually(timeout: 5) { try String(contentsOfFile: output, encoding: .utf8).contains("\"n\": 424242") })
        #expect(Date().timeIntervalSince(committed) < 2)
    }

    /// Authentication as the console's: with a token, none or a wrong one is 401; bad
    /// parameters and unknown triggers are 400 and 404 naming the culprit.
    @Test func requestsAreAuthenticatedAndBadOnesNamed() throws {
        let setup = try StreamFixture(token: "stream-test-token-abcdef")
        let worker = try setup.worker()
        let url = "\(setup.base)/v1/stream/items_changes?format=json"
        #expect(try httpGet(url).status == 401)
        #expect(try httpGet(url, headers: ["Authorization: Bearer wrong"]).status == 401)
        let auth = ["Authorization: Bearer stream-test-token-abcdef"]
        #expect(try httpGet(url, headers: auth).status == 200)
        let unknown = try httpGet("\(setup.base)/v1/stream/items_changs?format=json", headers: auth)
        #expect(unknown.status == 404 && unknown.body.contains("did you mean 'items_changes'"), "\(unknown.body)")
        let badCursor = try httpGet(url + "&after=12345", headers: auth)
        #expect(badCursor.status == 400 && badCursor.body.contains("not a stream cursor"), "\(badCursor.body)")
        let badBatch = try httpGet(url + "&batch=0", headers: auth)
        #expect(badBatch.status == 400 && badBatch.body.contains("batch"), "\(badBatch.body)")
        let unknownParameter = try httpGet(url + "&limit=5", headers: auth)
        #expect(unknownParameter.status == 400 && unknownParameter.body.contains("'limit'"), "\(unknownParameter.body)")
        #expect(worker.terminate() == 0)
    }

    /// The database restarts under a connected SSE client: the stream waits it out on the
    /// same connection to the client and goes on from its cursor, every event exactly once.
    @Test func aDatabaseRestartUnderAStreamLosesAndRepeatsNothing() throws {
        let server = try DedicatedPostgres()
        let setup = try StreamFixture(server: server)
        let worker = try setup.worker()
        let output = try temporaryFile("", suffix: ".jsonl")
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        client.arguments = ["python3", Self.clientScript, setup.base, "items_changes", "--out", output, "--stop-after", "200", "--idle-exit", "60"]
        try client.run()
        try setup.connection.execute(script: "INSERT INTO items (n) SELECT g FROM generate_series(1, 100) g")
        func received() throws -> [Int] {
            try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").compactMap {
                let event = (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
                return (event?["payload"] as? [String: Any]).flatMap { StreamFixture.n(["payload": $0]) }
            }
        }
        #expect(try eventually(timeout: 20) { try received().count == 100 })
        try server.stop()
        Thread.sleep(forTimeInterval: 2)
        try server.start()
        let after = try PGConnection(url: setup.url)
        try after.execute(script: "INSERT INTO items (n) SELECT g FROM generate_series(101, 200) g")
        client.waitUntilExit()
        #expect(client.terminationStatus == 0)
        #expect(try received() == Array(1...200), "\(worker.log.suffix(2000))")
        #expect(worker.log.contains("stream read failed; retrying"))
        #expect(worker.terminate() == 0)
    }

    /// Both forms pass through the listener's one redaction: a configured secret written into
    /// a row reaches no stream client, in the JSON answer or in the SSE stream.
    @Test func aSecretPlantedInARowIsRedactedInBothForms() throws {
        let setup = try StreamFixture()
        try setup.connection.execute(
            script: """
                ALTER TABLE items ADD COLUMN note text;
                INSERT INTO items (n) VALUES (1);
                INSERT INTO items (n, note) VALUES (2, 'key=\(StreamFixture.plantedSecret)');
                """)
        let worker = try setup.worker()
        let json = try setup.poll(after: nil)
        #expect(json.events.count == 2)
        #expect(!json.body.contains(StreamFixture.plantedSecret))
        #expect(json.body.contains(Redaction.placeholder), "\(json.body)")
        // SSE: what arrives in five seconds (the stream never ends by itself).
        let sse = try httpGet("\(setup.base)/v1/stream/items_changes").body
        #expect(sse.contains("\"n\": 2"), "\(sse)")
        #expect(!sse.contains(StreamFixture.plantedSecret))
        #expect(sse.contains(Redaction.placeholder), "\(sse)")
        #expect(worker.terminate() == 0)
    }

    /// A listener that is not loopback and has no token (allowed only with
    /// `allow_unauthenticated`) serves /stats, but never the stream: events are data.
    @Test func aTokenlessListenerThatIsNotLoopbackRefusesTheStream() throws {
        let setup = try StreamFixture(listenHost: "0.0.0.0", statsExtra: ", allow_unauthenticated: true")
        let worker = try setup.worker()
        let refused = try httpGet("\(setup.base)/v1/stream/items_changes?format=json")
        #expect(refused.status == 403 && refused.body.contains("bearer_token_env"), "\(refused.body)")
        #expect(try httpGet("\(setup.base)/stats").status == 200)
        #expect(worker.terminate() == 0)
    }
}
