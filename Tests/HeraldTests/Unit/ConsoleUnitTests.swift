import Foundation
import HTTPTypes
import Hummingbird
import Testing

@testable import Herald

@Suite("Console (pure parts)")
struct ConsoleUnitTests {
    @Test func markupEscapesInterpolatedTextButNotMarkup() {
        let payload = #"<script>alert("x")</script> & 'y'"#
        let inner: Markup = "<b>\(payload)</b>"
        let page: Markup = "<p>\(inner)</p>"
        #expect(page.html == "<p><b>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;</b></p>")
    }

    @Test func eventPageRendersAScriptPayloadAsText() {
        let event = ClaimedEvent(
            id: 7, triggerName: "t", table: TableName(schema: "public", name: "orders"),
            payload: #"{"op":"INSERT","data":{"old":null,"new":{"note":"<script>alert(1)</script>"}}}"#, tries: 1,
            createdAt: "2026-01-01T00:00:00Z", createdAtEpoch: 0)
        let detail = EventBrowser.Detail(
            event: event, status: "failed", leasedBy: nil, nextAttemptAt: "", finishedAt: nil, lastStatusCode: 500,
            lastError: nil,
            attempts: [
                .init(
                    attempt: 1, statusCode: 500, errorClass: "http", errorMessage: nil,
                    headers: [("Authorization", "<redacted>")], responseBody: "<img src=x onerror=alert(2)>",
                    durationMs: 3, at: "")
            ])
        let context = PageContext(
            identity: .bearer, csrf: "c", readOnly: false, links: ConsoleLinks(publicURL: ""), path: "/console/events/x")
        let html = EventPage.render(detail: detail, trigger: nil, id: "x", context: context, notice: nil).html
        #expect(!html.contains("<script>alert"))
        #expect(!html.contains("<img src=x"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
    }

    @Test func filterQueryIsReadAsEventIdKeyValueOrContainment() throws {
        let installation = EventIDKey(bytes: Array(0..<32), v2From: 1)
        let uuid = EventID.uuid(key: installation, number: 42)
        #expect(try EventFilter(query: uuid).parsedQuery(key: installation) == .event(42))
        // Another installation's id (or one kept from Hasura) is looked up as an imported id.
        let other = EventID.uuid(key: EventIDKey(bytes: Array(repeating: 7, count: 32), v2From: 1), number: 42)
        #expect(try EventFilter(query: other).parsedQuery(key: installation) == .importedID(other.lowercased()))
        #expect(try EventFilter(query: " 42 ").parsedQuery(key: installation) == .key("42"))
        #expect(
            try EventFilter(query: #"{"data":{"new":{"id":1}}}"#).parsedQuery(key: installation)
                == .containment(#"{"data":{"new":{"id":1}}}"#))
        // The delivered envelope's {"event": …} is unwrapped to the stored object.
        #expect(
            try EventFilter(query: #"{"event":{"op":"DELETE"}}"#).parsedQuery(key: installation)
                == .containment(#"{"op":"DELETE"}"#))
        #expect(throws: EventFilter.Invalid.self) { try EventFilter(query: "{not json").parsedQuery(key: installation) }
    }

    @Test func keyValueSearchBindsEveryValueAsAParameter() throws {
        let (sql, parameters) = try EventFilter(trigger: "t", status: "failed", query: "42'; DROP TABLE x")
            .conditions(key: EventIDKey(bytes: Array(0..<32), v2From: 1), keyColumns: ["id"])
        #expect(sql.allSatisfy { !$0.contains("DROP") })
        #expect(parameters.first == "t")
        #expect(parameters.contains(#"{"data":{"new":{"id":"42'; DROP TABLE x"}}}"#))
        let numeric = try EventFilter(query: "42").conditions(key: EventIDKey(bytes: Array(0..<32), v2From: 1), keyColumns: ["order_id"])
        #expect(numeric.parameters.contains("42"))
        #expect(numeric.parameters.contains(#"{"data":{"old":{"order_id":42}}}"#))
        #expect(numeric.parameters.contains(#"{"data":{"new":{"order_id":"42"}}}"#))
    }

    @Test func sessionIDsAreRandomWellFormedAndStoredOnlyAsAHash() {
        let auth = ConsoleAuth(token: Secret("t0ken"), listenerIsLoopback: true, secureCookie: false)
        let session = ConsoleAuth.newSessionID()
        #expect(ConsoleAuth.isWellFormedSessionID(session))
        #expect(ConsoleAuth.newSessionID() != session)
        #expect(!session.contains("t0ken"))
        #expect(!ConsoleAuth.isWellFormedSessionID("99999999999.AAAA"))
        #expect(!ConsoleAuth.isWellFormedSessionID(String(session.dropLast()) + "="))
        let hash = auth.sessionHash(session)
        #expect(hash.count == 64)
        #expect(!hash.contains(session))
        let identity = ConsoleAuth.Identity.session(session)
        let other = ConsoleAuth(token: Secret("other"), listenerIsLoopback: true, secureCookie: false)
        // A new token finds none of the old token's sessions.
        #expect(other.sessionHash(session) != hash)
        #expect(auth.allowsPost(from: identity, csrf: auth.csrfToken(for: identity)))
        #expect(!auth.allowsPost(from: identity, csrf: nil))
        #expect(!auth.allowsPost(from: identity, csrf: other.csrfToken(for: identity)))
        #expect(auth.allowsPost(from: .bearer, csrf: nil))
        #expect(auth.setCookie(session, maxAge: 10).contains("HttpOnly; SameSite=Strict"))
    }

    @Test func loginRedirectStaysInsideTheConsole() {
        #expect(Console.safeNext("/console/events?status=failed") == "/console/events?status=failed")
        #expect(Console.safeNext("https://evil.example/") == "/console")
        #expect(Console.safeNext("//evil.example/console") == "/console")
    }

    @Test func formCodingRoundTripsFilters() {
        let form = FilterForm(trigger: "a b", status: "failed", since: "24h", q: #"{"x":"+&="}"#)
        #expect(FilterForm(fields: FormCoding.decode(form.query)) == form)
    }

    @Test func throughputChartDrawsOneBarPerBusyMinute() {
        var series = EventBrowser.Throughput(
            delivered: Array(repeating: 0, count: EventBrowser.minutes), failed: Array(repeating: 0, count: EventBrowser.minutes))
        series.delivered[59] = 10
        series.failed[58] = 5
        let svg = ThroughputChart.svg(series).html
        #expect(svg.components(separatedBy: "<rect").count - 1 == 3)
        #expect(svg.contains("10 delivered, 5 failed"))
        #expect(!svg.contains("style="))
    }
}

@Suite("Console links and open mode")
struct ConsoleLinkTests {
    @Test func publicURLMakesAuditAndPermalinksAbsolute() {
        #expect(ConsoleLinks(publicURL: "").absolute("/console/events/x") == "/console/events/x")
        #expect(
            ConsoleLinks(publicURL: "https://ops.example.com/herald/console/").absolute("/console/events/x")
                == "https://ops.example.com/herald/console/events/x")
        #expect(
            ConsoleLinks(publicURL: "https://herald.example.com").absolute("/console")
                == "https://herald.example.com/console")
    }

    @Test func openConsoleOnLoopbackAnswersOnlyLoopbackHostNames() {
        let auth = ConsoleAuth(token: nil, listenerIsLoopback: true, secureCookie: false)
        func request(_ authority: String) -> Request {
            Request(
                head: HTTPRequest(method: .get, scheme: "http", authority: authority, path: "/console"),
                body: RequestBody(buffer: ByteBuffer()))
        }
        #expect(auth.credential(request("127.0.0.1:9464")) == .proven(.open))
        #expect(auth.credential(request("localhost:9464")) == .proven(.open))
        #expect(auth.credential(request("[::1]:9464")) == .proven(.open))
        // A DNS-rebinding page reaches the loopback listener under its own name.
        #expect(auth.credential(request("attacker.example:9464")) == nil)
        let tokened = ConsoleAuth(token: Secret("t"), listenerIsLoopback: true, secureCookie: false)
        #expect(tokened.credential(request("127.0.0.1:9464")) == nil)
    }
}

extension ConsoleLinkTests {
    @Test func statsLinksToEachTriggersFailedEventsWhenPublicURLIsSet() {
        var failing = QueueStats.Trigger(trigger: "order changes")
        failing.failed = 3
        let stats = QueueStats(triggers: [failing, QueueStats.Trigger(trigger: "quiet")])
        #expect(stats.consoleLinks(publicURL: "") == [])
        #expect(
            stats.consoleLinks(publicURL: "https://herald.example.com/console")
                == ["failed events of order changes: https://herald.example.com/console/events?trigger=order%20changes&status=failed"])
    }
}
