import Foundation
import Testing

@testable import Herald

/// Issue 18's listener and console findings, each reproduced against a real worker and
/// database: partial headers held open (4), unbounded console connections (3), sessions that
/// survive logout or collide (7), and login guessing in parallel (8).
@Suite("Console and listener hardening", .enabled(if: TestEnvironment.integrationEnabled))
struct ConsoleHardeningTests {
    static let bearer = "Authorization: Bearer \(ConsoleFixture.token)"

    @Test func connectionsSendingPartialHeadersAreClosedWithinTheIdleTimeout() throws {
        let receiver = try Receiver()
        let port = try freePort()
        let fixture = try WorkerFixture(webhook: receiver.url("/ok"))
        let yaml = try String(contentsOfFile: fixture.configPath, encoding: .utf8)
            .replacingOccurrences(of: #"stats: {listen: ""}"#, with: "stats: {listen: '127.0.0.1:\(port)'}")
        let worker = try WorkerProcess(
            configPath: try temporaryFile(yaml), environment: ["HERALD_STATS_IDLE_TIMEOUT_SECONDS": "1"])
        defer { _ = worker.terminate() }
        #expect(try eventually { try httpGet("http://127.0.0.1:\(port)/healthz").status == 200 }, "\(worker.log)")
        let connections = try (0..<5).map { _ in try RawConnection(port: port) }
        for connection in connections { connection.send("GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ") }
        // Still trickling bytes keeps no connection alive: only a whole head counts as activity.
        Thread.sleep(forTimeInterval: 0.5)
        for connection in connections { connection.send("a") }
        let closed = connections.filter { $0.closedByServer(within: 4) }.count
        #expect(closed == 5, "\(5 - closed) of 5 half-sent requests still open after 1 s timeout + 4 s")
        // The listener still serves whole requests.
        #expect(try httpGet("http://127.0.0.1:\(port)/healthz").status == 200)
    }

    @Test func thirtyConcurrentPagesNeverTakeMoreThanTheConsolesConnections() throws {
        let fixture = try ConsoleFixture()
        let admin = try fixture.database.connect()
        // Holding the event log makes every page wait on the database with its connection
        // open, the worst case for a burst; the console must queue them, not open more.
        try admin.execute(script: "BEGIN; LOCK TABLE herald.event_log IN ACCESS EXCLUSIVE MODE")
        var most = 0
        let observer = try fixture.database.connect()
        let results = try parallelCalls(30, fixture.baseURL + "/console/events?status=failed", headers: [Self.bearer]) {
            let until = Date().addingTimeInterval(3)
            while Date() < until {
                let now = try observer.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'herald-console' AND datname = current_database()")
                most = max(most, Int(now[0, 0] ?? "") ?? 0)
                Thread.sleep(forTimeInterval: 0.05)
            }
            // A new connection (the operator's psql) still gets in during the burst.
            #expect(try fixture.database.connect().query("SELECT 1")[0, 0] == "1")
            try admin.execute(script: "COMMIT")
        }
        let bound = ConsoleSettings().connections
        #expect(most <= bound, "\(most) console backends, bound \(bound)")
        #expect(most >= 1, "the burst never reached the database")
        let statuses = results.map(\.status)
        #expect(statuses.allSatisfy { $0 == 200 || $0 == 503 }, "\(statuses)")
        #expect(statuses.contains(200))
        #expect(statuses.contains(503))
        #expect(results.filter { $0.status == 503 }.allSatisfy { $0.headers["retry-after"] == "2" })
        // After the burst the console answers normally.
        #expect(try httpCall(fixture.baseURL + "/console/events", headers: [Self.bearer]).status == 200)
    }

    @Test func logoutAndConsoleLogoutAllRevokeSessionsServerSide() throws {
        let fixture = try ConsoleFixture()
        func login() throws -> String {
            let response = try httpCall(
                fixture.baseURL + "/console/login", method: "POST", form: [("token", ConsoleFixture.token), ("next", "/console")])
            #expect(response.status == 303)
            return "Cookie: " + String((response.headers["set-cookie"] ?? "").prefix { $0 != ";" })
        }
        func status(_ cookie: String) throws -> Int { try httpCall(fixture.baseURL + "/console", headers: [cookie]).status }
        let first = try login()
        let second = try login()
        #expect(first != second, "two logins in the same second share a cookie")
        #expect(try status(first) == 200)
        #expect(try status(second) == 200)
        let stored = try fixture.database.values("SELECT encode(id_hash, 'hex') FROM herald.console_sessions")
        let cookieValue = String(first.dropFirst("Cookie: herald_console=".count))
        let auth = ConsoleAuth(token: Secret(ConsoleFixture.token), listenerIsLoopback: true, secureCookie: false)
        #expect(stored.contains(auth.sessionHash(cookieValue)))
        #expect(!stored.contains(cookieValue))

        let page = try httpCall(fixture.baseURL + "/console", headers: [first])
        let csrf = try #require(page.body.firstMatch(of: /name="csrf" value="([^"]+)"/)?.1)
        let logout = try httpCall(
            fixture.baseURL + "/console/logout", method: "POST", headers: [first], form: [("csrf", String(csrf))])
        #expect(logout.status == 303)
        // The old cookie, replayed after logout, is sent to the login page.
        let replayed = try httpCall(fixture.baseURL + "/console", headers: [first])
        #expect(replayed.status == 303)
        #expect(replayed.location.hasPrefix("/console/login"))
        #expect(try httpCall(fixture.baseURL + "/console/logout", method: "POST", headers: [first]).status == 401)
        #expect(try status(second) == 200)

        let third = try login()
        let result = try runHerald(
            ["console-logout", "--all", "--config", fixture.configPath], environment: ["CONSOLE_TOKEN": ConsoleFixture.token])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("revoked 2 console sessions"), "\(result.stdout)")
        #expect(try status(second) == 303)
        #expect(try status(third) == 303)
        #expect(try status(Self.bearer) == 200)
    }

    @Test func parallelWrongLoginsAreLimitedGloballyAndTheOperatorGetsInAfterwards() throws {
        let fixture = try ConsoleFixture()
        let start = Date()
        let results = try parallelCalls(
            40, fixture.baseURL + "/console/login", method: "POST", form: [("token", "guess"), ("next", "/console")])
        let elapsed = Date().timeIntervalSince(start)
        let judged = results.filter { $0.status == 401 }.count
        let refused = results.filter { $0.status == 429 }
        #expect(judged + refused.count == 40, "\(results.map(\.status))")
        // Burst 5, then one per second: no more guesses were judged than the bucket allows.
        let allowed = LoginLimiter.burst + Int(elapsed * LoginLimiter.perSecond) + 1
        #expect(judged <= allowed, "\(judged) guesses judged in \(elapsed) s (at most \(allowed))")
        #expect(refused.allSatisfy { Int($0.headers["retry-after"] ?? "") ?? 0 >= 1 })
        // Once the bucket refills, the right token still logs in.
        let loggedIn = eventually(timeout: 10) {
            (try? httpCall(
                fixture.baseURL + "/console/login", method: "POST", form: [("token", ConsoleFixture.token), ("next", "/console")]
            ).status) == 303
        }
        #expect(loggedIn)
    }
}
