import Foundation
import Logging
import Testing

@testable import Herald

/// Item "safe to expose": refusing an open non-loopback listener, header validation at load,
/// redaction of credentials wherever Herald shows configuration or attempts.
@Suite("Safe to expose")
struct SafeExposureTests {
    /// The configuration suite's parse and failure helpers (same base file, same shape).
    let configuration = ConfigTests()

    func parse(_ yaml: String, environment: [String: String] = [:]) throws(ConfigError) -> HeraldConfig {
        try configuration.parse(yaml, environment: environment)
    }

    func failure(_ yaml: String, environment: [String: String] = [:]) -> ConfigError? {
        configuration.failure(yaml, environment: environment)
    }

    static func trigger(headers: String, webhook: String = "http://127.0.0.1:9/x") -> String {
        """
        tables:
          - table: {schema: public, name: orders}
            event_triggers:
              - name: order_changes
                definition: {insert: {columns: "*"}}
                webhook: \(webhook)
                headers: \(headers)
        """
    }

    @Test(arguments: ["0.0.0.0:9464", ":9464", "10.1.2.3:80", "[::]:9464"])
    func nonLoopbackStatsListenWithoutTokenIsRefused(_ listen: String) throws {
        let error = try #require(failure("stats: {listen: '\(listen)'}\n"))
        #expect(error.key == "stats.listen")
        #expect(error.description.contains("bearer_token_env"))
        #expect(error.description.contains("allow_unauthenticated"))
    }

    @Test func nonLoopbackStatsListenIsAllowedWithATokenOrExplicitOptOut() throws {
        let withToken = try parse(
            "stats: {listen: '0.0.0.0:9464', bearer_token_env: TOKEN}\n", environment: ["TOKEN": "abc"])
        #expect(withToken.stats.bearerToken?.value == "abc")
        let optedOut = try parse("stats: {listen: '0.0.0.0:9464', allow_unauthenticated: true}\n")
        #expect(optedOut.stats.allowUnauthenticated)
        let fromEnvironment = try parse(
            "stats: {listen: '0.0.0.0:9464'}\n", environment: ["HERALD_STATS_ALLOW_UNAUTHENTICATED": "true"])
        #expect(fromEnvironment.stats.allowUnauthenticated)
        #expect(try parse("stats: {listen: '127.0.0.1:9464'}\n").stats.bearerToken == nil)
    }

    @Test(arguments: [(#""a\r\nInjected: yes""#, "carriage return"), (#""a\nInjected: yes""#, "line feed")])
    func literalHeaderValueWithControlCharacterIsAConfigErrorNamingHeaderAndTrigger(_ value: String, _ what: String)
        throws
    {
        let error = try #require(failure(Self.trigger(headers: "[{name: X-Tenant, value: \(value)}]")))
        #expect(error.code == .invalidValue)
        #expect(error.description.contains("'X-Tenant'"))
        #expect(error.description.contains("'order_changes'"))
        #expect(error.description.contains(what))
        #expect(!error.description.contains("Injected"))
    }

    @Test(arguments: [("secret\r\nInjected: yes", "carriage return"), ("secret\u{0}tail", "NUL")])
    func headerValueFromEnvironmentWithControlCharacterIsRefusedWithoutShowingIt(_ value: String, _ what: String) throws {
        let error = try #require(
            failure(
                Self.trigger(headers: "[{name: X-Api-Key, value_from_env: KEY}]"), environment: ["KEY": value]))
        #expect(error.description.contains(what))
        #expect(error.description.contains("'X-Api-Key'"))
        #expect(error.description.contains("'order_changes'"))
        #expect(!error.description.contains("secret"))
    }

    @Test(arguments: ["X Tenant", "X-Tenant:", "Caf\u{e9}", ""])
    func headerNameThatIsNotATokenIsAConfigError(_ name: String) throws {
        let error = try #require(failure(Self.trigger(headers: "[{name: '\(name)', value: v}]")))
        #expect(error.description.contains("not a valid HTTP header name"))
        #expect(error.description.contains("'order_changes'"))
    }

    @Test func literalCredentialHeadersAreRedactedInRecordedRequests() throws {
        let config = try parse(
            Self.trigger(
                headers: "[{name: Authorization, value: 'Bearer literal-secret'}, {name: X-Api-Key, value: k1}, "
                    + "{name: Cookie, value: 's=1'}, {name: X-Refresh-Token, value: t1}, {name: X-Client-Secret, value: c1}, "
                    + "{name: X-Tenant, value: acme}]"))
        let event = ClaimedEvent(
            id: 1, triggerName: "order_changes", table: TableName(schema: "public", name: "orders"), payload: "{}",
            tries: 0, createdAt: "2026-01-01T00:00:00Z", createdAtEpoch: 0)
        let request = DeliveryRequest(
            event: event, trigger: config.triggers[0], installation: EventIDKey(bytes: Array(0..<32), v2From: 1), timestamp: 1)
        let recorded = request.recordedHeaders
        for secret in ["literal-secret", "k1", "s=1", "t1", "c1"] {
            #expect(!recorded.contains(secret), "\(secret) in \(recorded)")
        }
        #expect(recorded.contains(#""X-Tenant":"acme""#))
        #expect(recorded.contains(#""Authorization":"<redacted>""#))
        // The receiver still gets the real value.
        #expect(request.headers.contains { $0.name == "Authorization" && $0.value == "Bearer literal-secret" })
        #expect(!ConfigSummary.text(for: config).contains("literal-secret"))
    }

    @Test(arguments: [
        ("https://user:pa55@hooks.example.com/in?sig=abc#frag", "https://<redacted>@hooks.example.com/in?<redacted>#<redacted>"),
        ("http://127.0.0.1:8000/hooks/orders", "http://127.0.0.1:8000/hooks/orders"),
        ("http://hooks.example.com/x?token=1", "http://hooks.example.com/x?<redacted>"),
        ("http://user@hooks.example.com/", "http://<redacted>@hooks.example.com/"),
    ])
    func webhookURLsAreShownWithoutCredentialsOrQuery(_ url: String, _ shown: String) {
        #expect(Redaction.url(url) == shown)
    }

    @Test func statsDocumentAndSummaryNeverShowWebhookCredentials() throws {
        let config = try parse(
            "stats: {listen: ''}\n"
                + Self.trigger(headers: "[]", webhook: "'https://hook-user:hook-pass@hooks.example.com/in?api_key=q1'"))
        let json = HeraldWorker(config: config, logger: Logger(label: "test")).statsJSON()
        let summary = ConfigSummary.text(for: config)
        for text in [json, summary, "\(config)", "\(config.triggers[0])"] {
            #expect(!text.contains("hook-pass"))
            #expect(!text.contains("q1"))
            #expect(!text.contains("s3cret"))
        }
        #expect(json.contains("hooks.example.com"))
    }

    @Test func secretPrintsRedactedEverywhere() {
        let secret = Secret("hunter2")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("hunter2"))
        let header = HeaderConfig(name: "X-Key", value: "hunter2", source: .literal)
        #expect(!"\(header)".contains("hunter2"))
        #expect(header.value == "hunter2")
    }

    @Test func bearerComparisonAcceptsOnlyTheExactToken() {
        let token = Secret("t0ken")
        #expect(ConstantTime.bearerMatches("Bearer t0ken", token: token))
        #expect(!ConstantTime.bearerMatches("Bearer t0ke", token: token))
        #expect(!ConstantTime.bearerMatches("Bearer t0ken ", token: token))
        #expect(!ConstantTime.bearerMatches("t0ken", token: token))
        #expect(!ConstantTime.bearerMatches(nil, token: token))
    }
}
