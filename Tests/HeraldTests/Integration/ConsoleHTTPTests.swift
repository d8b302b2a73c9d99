import Foundation
import Testing

@testable import Herald

/// The console over real HTTP (curl) against a real worker and database: authentication,
/// CSRF, read-only mode with a SELECT-only role, and the non-loopback refusal.
@Suite("Console over HTTP", .enabled(if: TestEnvironment.integrationEnabled))
struct ConsoleHTTPTests {
    static let bearer = "Authorization: Bearer \(ConsoleFixture.token)"

    @Test func withoutTheTokenEveryPageAndActionIsRefused() throws {
        let fixture = try ConsoleFixture()
        let id = try fixture.eventID(order: 1)
        for path in ["/console", "/console/events?status=failed", "/console/events/\(id)", "/console/redeliver?status=failed"] {
            let anonymous = try httpCall(fixture.baseURL + path)
            #expect(anonymous.status == 303, "\(path)")
            #expect(anonymous.location.hasPrefix("/console/login?next="), "\(path)")
            #expect(!anonymous.body.contains("order_changes"), "\(path)")
            let wrong = try httpCall(fixture.baseURL + path, headers: ["Authorization: Bearer wrong"])
            #expect(wrong.status == 401, "\(path)")
            let forgedCookie = try httpCall(fixture.baseURL + path, headers: ["Cookie: herald_console=99999999999.AAAA"])
            #expect(forgedCookie.status == 303, "\(path)")
        }
        for path in ["/console/events/\(id)/redeliver", "/console/redeliver", "/console/logout"] {
            let post = try httpCall(fixture.baseURL + path, method: "POST", form: [("status", "failed"), ("expected", "6")])
            #expect(post.status == 401, "\(path)")
        }
        #expect(try httpCall(fixture.baseURL + "/stats").status == 401)
        #expect(try fixture.database.values("SELECT count(*) FROM herald.event_log WHERE status = 'pending' AND trigger_name <> 'legacy_hook'") == ["0"])
    }

    @Test func bearerHeaderReadsPagesAndActsWithoutCSRF() throws {
        let fixture = try ConsoleFixture()
        let overview = try httpCall(fixture.baseURL + "/console", headers: [Self.bearer])
        #expect(overview.status == 200)
        #expect(overview.headers["content-security-policy"]?.contains("default-src 'none'") == true)
        #expect(overview.body.contains("order_changes"))
        #expect(!overview.body.contains(ConsoleFixture.literalSecret))
        let id = try fixture.eventID(order: 2)
        let detail = try httpCall(fixture.baseURL + "/console/events/\(id)", headers: [Self.bearer])
        #expect(detail.status == 200)
        #expect(detail.body.contains("&lt;redacted&gt;"))
        #expect(!detail.body.contains(ConsoleFixture.literalSecret))
        // Failed after its only attempt (num_retries 0): the page shows what that attempt sent,
        // not an envelope with current_retry 1 that no request carried (issue 22, finding 4).
        #expect(detail.body.contains("Payload as sent on the last attempt (attempt 1)"))
        #expect(detail.body.contains("&quot;current_retry&quot; : 0"))
        #expect(!detail.body.contains("&quot;current_retry&quot; : 1"))
        // Events and attempts are counted apart, and labelled so (finding 5).
        #expect(overview.body.contains(">Failed events<"))
        #expect(overview.body.contains(">Failed attempts 1h<"))
        let redeliver = try httpCall(fixture.baseURL + "/console/events/\(id)/redeliver", method: "POST", headers: [Self.bearer])
        #expect(redeliver.status == 303)
        #expect(redeliver.location == "/console/events/\(id)?notice=redelivered")
        #expect(
            eventually(timeout: 20) {
                (try? fixture.database.values(
                    "SELECT status FROM herald.event_log WHERE payload->'data'->'new'->>'id' = '2' AND trigger_name = 'order_changes'"))
                    == ["delivered"]
            })
        // Two attempts numbered 1: the second is marked as following a redelivery, and each
        // shows the delivery_info it sent.
        let redelivered = try httpCall(fixture.baseURL + "/console/events/\(id)", headers: [Self.bearer]).body
        #expect(redelivered.components(separatedBy: "after redelivery</span> Attempt 1").count == 2, "\(redelivered)")
        #expect(redelivered.components(separatedBy: #"delivery_info: {"current_retry": 0, "max_retries": 0}"#).count == 3)
        #expect(fixture.worker.log.contains("console action"))
        #expect(fixture.worker.log.contains("redeliver"))
    }

    @Test func overviewShowsADisabledTriggerWithItsReason() throws {
        let fixture = try ConsoleFixture()
        let disabled = try runHerald(
            ["disable-trigger", "--config", fixture.configPath, "order_changes", "--reason", "maintenance window"],
            environment: ["CONSOLE_TOKEN": ConsoleFixture.token])
        #expect(disabled.status == 0, "\(disabled.stderr)")
        let overview = try httpCall(fixture.baseURL + "/console", headers: [Self.bearer])
        let row = overview.body.components(separatedBy: "data-trigger=\"order_changes\"").dropFirst().first ?? ""
        let cells = row.components(separatedBy: "</tr>").first ?? ""
        #expect(cells.contains(">disabled</span>"), "\(cells)")
        #expect(cells.contains("maintenance window"))
    }

    @Test func cookieSessionNeedsTheCSRFTokenToAct() throws {
        let fixture = try ConsoleFixture()
        let wrongLogin = try httpCall(
            fixture.baseURL + "/console/login", method: "POST", form: [("token", "nope"), ("next", "/console")])
        #expect(wrongLogin.status == 401)
        #expect(wrongLogin.headers["set-cookie"] == nil)
        let login = try httpCall(
            fixture.baseURL + "/console/login", method: "POST", form: [("token", ConsoleFixture.token), ("next", "/console/events")])
        #expect(login.status == 303)
        #expect(login.location == "/console/events")
        let setCookie = try #require(login.headers["set-cookie"])
        #expect(setCookie.contains("HttpOnly"))
        #expect(setCookie.contains("SameSite=Strict"))
        #expect(!setCookie.contains(ConsoleFixture.token))
        let cookie = "Cookie: " + String(setCookie.prefix { $0 != ";" })
        let id = try fixture.eventID(order: 3)
        let page = try httpCall(fixture.baseURL + "/console/events/\(id)", headers: [cookie])
        #expect(page.status == 200)
        let csrf = try #require(page.body.firstMatch(of: /name="csrf" value="([^"]+)"/)?.1)

        let noToken = try httpCall(fixture.baseURL + "/console/events/\(id)/redeliver", method: "POST", headers: [cookie])
        #expect(noToken.status == 403)
        let wrongToken = try httpCall(
            fixture.baseURL + "/console/events/\(id)/redeliver", method: "POST", headers: [cookie], form: [("csrf", "x")])
        #expect(wrongToken.status == 403)
        #expect(try fixture.database.values("SELECT count(*) FROM herald.event_log WHERE status = 'pending' AND trigger_name <> 'legacy_hook'") == ["0"])
        let ok = try httpCall(
            fixture.baseURL + "/console/events/\(id)/redeliver", method: "POST", headers: [cookie], form: [("csrf", String(csrf))])
        #expect(ok.status == 303)
    }

    @Test func readOnlyConsoleWorksWithASelectOnlyRole() throws {
        let fixture = try ConsoleFixture()
        let role = "herald_ro_\(UUID().uuidString.prefix(8).lowercased())"
        let admin = try fixture.database.connect()
        try admin.execute(
            script: """
                CREATE ROLE \(role) LOGIN;
                GRANT USAGE ON SCHEMA herald TO \(role);
                GRANT SELECT ON ALL TABLES IN SCHEMA herald TO \(role);
                """)
        var components = try #require(URLComponents(string: fixture.database.url))
        components.user = role
        let port = try freePort()
        let yaml = try String(contentsOfFile: fixture.configPath, encoding: .utf8)
            .replacingOccurrences(of: fixture.database.url, with: components.string ?? "")
            .replacingOccurrences(of: "console: {}", with: "console: {read_only: true}")
        let path = try temporaryFile(yaml)
        let console = try WorkerProcess(
            configPath: path, environment: ["CONSOLE_TOKEN": ConsoleFixture.token],
            command: ["console", "--listen", "127.0.0.1:\(port)"])
        let base = "http://127.0.0.1:\(port)"
        #expect(eventually(timeout: 20) { (try? httpGet(base + "/healthz").status) == 200 }, "\(console.log)")
        let id = try fixture.eventID(order: 4)
        for page in ["/console", "/console/events?status=failed", "/console/events?q=4", "/console/events/\(id)",
            "/console/events?q=%7B%22data%22%3A%7B%22new%22%3A%7B%22customer%22%3A%22acme%22%7D%7D%7D"]
        {
            let response = try httpCall(base + page, headers: [Self.bearer])
            #expect(response.status == 200, "\(page): \(response.body.prefix(500)) \(console.log)")
            #expect(!response.body.contains("id=\"redeliver\""), "\(page)")
        }
        let events = try httpCall(base + "/console/events?q=4&trigger=order_changes", headers: [Self.bearer])
        #expect(events.body.contains("data-event=\"\(id)\""))
        let refused = try httpCall(base + "/console/events/\(id)/redeliver", method: "POST", headers: [Self.bearer])
        #expect(refused.status == 403)
        #expect(try fixture.database.values("SELECT count(*) FROM herald.event_log WHERE status = 'pending' AND trigger_name <> 'legacy_hook'") == ["0"])
        #expect(console.terminate() == 0)
        try? admin.execute(script: "DROP OWNED BY \(role); DROP ROLE \(role)")
    }

    @Test func consoleOnANonLoopbackAddressWithoutATokenRefusesToStart() throws {
        let database = try TestDatabase()
        let path = try temporaryFile("database: {url: '\(database.url)'}\nstats: {listen: ''}\n")
        let result = try runHerald(["console", "--config", path, "--listen", "0.0.0.0:\(try freePort())"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("bearer_token_env"), "\(result.stderr)")
    }
}
