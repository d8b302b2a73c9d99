import Foundation
import Testing

@testable import Herald

/// `request_transform` read from the configuration and applied to a delivery.
@Suite("Request transform")
struct RequestTransformTests {
    static let installation = EventIDKey(bytes: Array(0..<32), v2From: 1)

    /// A config with one event trigger on `users` whose `request_transform` is `transform`
    /// (YAML, indented by the caller's two spaces per level from column 0).
    static func yaml(_ transform: String, extra: String = "") -> String {
        let indented = transform.split(separator: "\n", omittingEmptySubsequences: false)
            .map { "          " + $0 }.joined(separator: "\n")
        return """
            database: {url: 'postgres://127.0.0.1/app'}
            tables:
              - table: {schema: public, name: users}
                event_triggers:
                  - name: users_hook
                    definition: {insert: {columns: "*"}, update: {columns: "*"}}
                    webhook: https://api.example.com/v1
                    headers: [{name: X-Source, value: herald}, {name: Authorization, value: Bearer t0ken}]
            \(extra)
                    request_transform:
            \(indented)
            """
    }

    static func trigger(_ transform: String, extra: String = "") throws -> TriggerConfig {
        let config = try ConfigLoader.parse(yaml: yaml(transform, extra: extra), file: "herald.yaml", environment: [:])
        return try #require(config.trigger(named: "users_hook"))
    }

    static func loadError(_ transform: String) -> ConfigError? {
        do {
            _ = try ConfigLoader.parse(yaml: yaml(transform), file: "herald.yaml", environment: [:])
            return nil
        } catch {
            return error
        }
    }

    static func event(new: String = #"{"id": 7, "name": "Ada Lovelace", "email": "ada@example.com"}"#) -> ClaimedEvent {
        ClaimedEvent(
            id: 42, triggerName: "users_hook", table: TableName(schema: "public", name: "users"),
            payload: #"{"op": "UPDATE", "data": {"old": null, "new": \#(new)}, "session_variables": {"x-hasura-role": "admin"}}"#,
            tries: 0, createdAt: "2026-11-22T10:15:30.123456Z", createdAtEpoch: 0)
    }

    static func request(_ trigger: TriggerConfig, event: ClaimedEvent = event()) -> DeliveryRequest {
        DeliveryRequest(
            prepared: DeliveryRequest.Prepared(event: event, trigger: trigger, installation: installation), timestamp: 1)
    }

    static func header(_ request: DeliveryRequest, _ name: String) -> String? {
        request.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    // MARK: - Parsing

    @Test func versionTwoIsReadWithEveryKey() throws {
        let trigger = try Self.trigger(
            """
            version: 2
            template_engine: Kriti
            method: put
            url: "{{$base_url}}/users/{{$body.event.data.new.id}}"
            query_params: {notify: "yes"}
            request_headers: {add_headers: {X-User: "{{$body.event.data.new.name}}"}, remove_headers: [X-Source]}
            body: {action: transform, template: '{"name": {{$body.event.data.new.name}}}'}
            """)
        let transform = try #require(trigger.requestTransform)
        #expect(transform.version == 2)
        #expect(transform.method == .PUT)
        #expect(transform.url != nil)
        #expect(transform.addHeaders.map(\.name) == ["X-User"])
        #expect(transform.removeHeaders == ["x-source"])
        guard case .transform = transform.body else { Issue.record("body: \(transform.body)"); return }
        guard case .pairs(let pairs)? = transform.queryParams else { Issue.record("query_params"); return }
        #expect(pairs.count == 1)
        #expect(transform.summary == "version 2, PUT, url, query_params, headers +1 -1, body template")
    }

    @Test func versionOneTakesTheBodyTemplateAndItsContentType() throws {
        let json = try #require(
            try Self.trigger(
                """
                template_engine: Kriti
                method: POST
                url: '{{$base_url}}/api/v3/endpoint'
                content_type: application/json
                body: '{"table": {"name": {{$body.table.name}}}, "To": {"username": {{$body.event.data.new.name}}}}'
                """
            ).requestTransform)
        #expect(json.version == 1)
        guard case .transform = json.body else { Issue.record("body: \(json.body)"); return }
        let form = try #require(
            try Self.trigger(
                """
                version: 1
                content_type: application/x-www-form-urlencoded
                body: '{"name": {{$body.event.data.new.name}}}'
                """
            ).requestTransform)
        guard case .formFromObject = form.body else { Issue.record("body: \(form.body)"); return }
    }

    @Test func cronTriggersAcceptATransform() throws {
        let config = try ConfigLoader.parse(
            yaml: """
                database: {url: 'postgres://127.0.0.1/app'}
                cron_triggers:
                  - name: nightly
                    webhook: https://api.example.com/nightly
                    schedule: "0 3 * * *"
                    payload: {kind: report}
                    request_transform: {version: 2, method: GET, body: {action: remove}}
                """, file: "herald.yaml", environment: [:])
        let trigger = try #require(config.sources.flatMap(\.triggers).first { $0.name == "nightly" })
        #expect(trigger.requestTransform?.method == .GET)
    }

    @Test func aTemplateThatDoesNotParseIsAConfigErrorWithFileLineAndKritiPosition() throws {
        let error = try #require(
            Self.loadError(
                """
                version: 2
                body:
                  action: transform
                  template: |
                    {"a": 1,
                     "b": {{ $body.event. }}}
                """))
        #expect(error.code == .invalidValue)
        #expect(error.file == "herald.yaml")
        // The template's second line, in the file: the line after `template: |` is its first.
        #expect(error.line == 16)
        #expect(error.key == "tables[0].event_triggers[0].request_transform.body.template")
        #expect(error.message.contains("template line 2, column"), "\(error)")
    }

    @Test func anUnescapedTemplateErrorCountsColumnsInTheUsersText() throws {
        let error = try #require(Self.loadError(#"url: "{{$base_url}}/x/{{ $body. }}""#))
        #expect(error.key == "tables[0].event_triggers[0].request_transform.url")
        #expect(error.message.contains("template line 1, column"), "\(error)")
    }

    @Test(arguments: [
        ("method: TRACE", "unknown method 'TRACE'"),
        ("version: 3", "version 3"),
        ("template_engine: Go", "Kriti"),
        ("version: 2\nbody: {action: rewrite}", "unknown body action 'rewrite'"),
        ("version: 2\ncontent_type: application/json\nbody: {action: remove}", "version 1 key"),
        ("verb: GET", "unknown key 'verb'"),
    ])
    func invalidTransformsAreRefusedAtLoad(transform: String, message: String) throws {
        let error = try #require(Self.loadError(transform))
        #expect(error.description.contains(message), "\(error)")
    }

    // MARK: - Applying

    @Test func urlWithPathParametersFromTheRowAndAMethodChange() throws {
        let trigger = try Self.trigger(
            """
            version: 2
            method: PATCH
            url: "{{$base_url}}/users/{{$body.event.data.new.id}}"
            """)
        let request = Self.request(trigger)
        #expect(request.method == .PATCH)
        #expect(request.url == "https://api.example.com/v1/users/7")
        // The body is Herald's payload as without the transform.
        let untransformed = Self.request(try Self.trigger("version: 2"))
        #expect(request.body == untransformed.body)
        #expect(Self.header(request, "Content-Type") == "application/json")
    }

    @Test func queryParamsAsPairsAndAsOneTemplate() throws {
        let pairs = Self.request(
            try Self.trigger(
                """
                version: 2
                url: "{{$base_url}}?dropped=1"
                query_params: {id: "{{$body.event.data.new.id}}", who: "{{$body.event.data.new.name}}", none: null}
                """))
        #expect(pairs.url == "https://api.example.com/v1?id=7&who=Ada%20Lovelace")
        let whole = Self.request(
            try Self.trigger(
                """
                version: 2
                query_params: "email={{$body.event.data.new.email}}&op={{$body.event.op}}"
                """))
        #expect(whole.url == "https://api.example.com/v1?email=ada@example.com&op=UPDATE")
    }

    @Test func formURLEncodedBody() throws {
        let request = Self.request(
            try Self.trigger(
                """
                version: 2
                body:
                  action: x_www_form_urlencoded
                  form_template: {name: "{{$body.event.data.new.name}}", id: "{{$body.event.data.new.id}}", role: "{{$session_variables['x-hasura-role']}}"}
                """))
        #expect(String(decoding: request.body, as: UTF8.self) == "name=Ada%20Lovelace&id=7&role=admin")
        #expect(Self.header(request, "Content-Type") == "application/x-www-form-urlencoded")
    }

    @Test func transformedBodyIsSentAndSignedAsSent() throws {
        var trigger = try Self.trigger(
            """
            version: 2
            body: {action: transform, template: '{"text": "New user {{$body.event.data.new.name}}", "id": {{$body.event.data.new.id}}}'}
            """)
        let key = try #require(WebhookSignature.decodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        trigger.signing = SigningConfig(secretEnvironmentVariable: "S", key: key)
        let request = Self.request(trigger)
        #expect(String(decoding: request.body, as: UTF8.self) == #"{"text":"New user Ada Lovelace","id":7}"#)
        #expect(
            Self.header(request, "webhook-signature")
                == WebhookSignature.sign(key: key, messageID: request.messageID, timestamp: 1, body: request.body))
    }

    @Test func headersAreAddedAndRemovedIncludingHeraldsOwn() throws {
        let request = Self.request(
            try Self.trigger(
                """
                version: 2
                request_headers:
                  add_headers: {X-User-Id: "{{$body.event.data.new.id}}", User-Agent: my-agent, X-Api-Token: "{{$body.event.data.new.email}}"}
                  remove_headers: [X-Source, webhook-id]
                """))
        let names = request.headers.map { $0.name.lowercased() }
        #expect(!names.contains("x-source"))
        #expect(!names.contains("webhook-id"))
        #expect(names.contains("webhook-timestamp"))
        #expect(names.filter { $0 == "user-agent" }.count == 1)
        #expect(Self.header(request, "User-Agent") == "my-agent")
        #expect(Self.header(request, "X-User-Id") == "7")
        #expect(Self.header(request, "Authorization") == "Bearer t0ken")
        // A credential by name stays secret in invocation rows, whatever made it.
        #expect(request.headers.first { $0.name == "X-Api-Token" }?.isSecret == true)
        #expect(request.recordedHeaders.contains(#""X-Api-Token":"<redacted>""#))
    }

    @Test func removedBodySendsNeitherBodyNorContentType() throws {
        let request = Self.request(try Self.trigger("version: 2\nmethod: GET\nbody: {action: remove}"))
        #expect(request.method == .GET)
        #expect(!request.sendsBody)
        #expect(request.body.isEmpty)
        #expect(Self.header(request, "Content-Type") == nil)
    }

    @Test func versionOneFormBodyEncodesTheTemplatesObject() throws {
        let request = Self.request(
            try Self.trigger(
                """
                content_type: application/x-www-form-urlencoded
                body: '{"user": {{$body.event.data.new.name}}, "n": {{$body.event.data.new.id}}}'
                """))
        #expect(String(decoding: request.body, as: UTF8.self) == "user=Ada%20Lovelace&n=7")
        #expect(Self.header(request, "Content-Type") == "application/x-www-form-urlencoded")
    }

    @Test func aTemplateFailingOnOneEventRefusesThatJobAsUnsendableWithKritisMessage() throws {
        let trigger = try Self.trigger(
            """
            version: 2
            url: "{{$base_url}}/users/{{$body.event.data.new.account.id}}"
            """)
        let job = DeliveryJob(
            event: Self.event(), trigger: trigger,
            policy: RetryPolicy(retry: trigger.retry, backoff: trigger.backoff, maxRetryAfterSeconds: 600),
            installation: Self.installation, leaseEnds: .now + .seconds(60))
        let (errorClass, message) = try #require(job.refusal)
        #expect(errorClass == .unsendable)
        #expect(message.hasPrefix("request transform failed in url: "), "\(message)")
        #expect(message.contains("account"), "\(message)")
        // An event with the path present is sent.
        let fine = DeliveryJob(
            event: Self.event(new: #"{"id": 1, "account": {"id": 9}}"#), trigger: trigger,
            policy: RetryPolicy(retry: trigger.retry, backoff: trigger.backoff, maxRetryAfterSeconds: 600),
            installation: Self.installation, leaseEnds: .now + .seconds(60))
        #expect(fine.refusal == nil)
        #expect(fine.prepared.url == "https://api.example.com/v1/users/9")
    }

    @Test func aURLThatCannotBeSentIsRefusedNotRetried() throws {
        let raw = try Self.trigger("version: 2\nurl: \"{{$base_url}}/by-name/{{$body.event.data.new.name}}\"")
        let failure = try #require(DeliveryRequest.Prepared(event: Self.event(), trigger: raw, installation: Self.installation).transformFailure)
        #expect(failure.contains("URL that cannot be sent"), "\(failure)")
        let escaped = try Self.trigger("version: 2\nurl: \"{{$base_url}}/by-name/{{escapeUri($body.event.data.new.name)}}\"")
        #expect(Self.request(escaped).url == "https://api.example.com/v1/by-name/Ada%20Lovelace")
    }

    @Test func theConsolesEventPageShowsTheTransformedRequest() throws {
        let trigger = try Self.trigger("version: 2\nmethod: PUT\nurl: \"{{$base_url}}/users/{{$body.event.data.new.id}}\"")
        let detail = EventBrowser.Detail(
            event: Self.event(), status: "pending", leasedBy: nil, nextAttemptAt: "", finishedAt: nil, lastStatusCode: nil,
            lastError: nil, attempts: [])
        let context = PageContext(
            identity: .bearer, csrf: "c", readOnly: true, links: ConsoleLinks(publicURL: ""), path: "/console/events/x")
        let html = EventPage.render(detail: detail, trigger: trigger, id: "x", context: context, notice: nil).html
        #expect(html.contains("PUT https://api.example.com/v1/users/7"))
        #expect(html.contains("Authorization: &lt;redacted&gt;"))
        #expect(!html.contains("t0ken"))
        var plain = trigger
        plain.requestTransform = nil
        #expect(!EventPage.render(detail: detail, trigger: plain, id: "x", context: context, notice: nil).html
            .contains("transformed-request"))
    }

    @Test func previewOfAPayloadFileRedactsSecretsAndShowsTheTransformedRequest() throws {
        let trigger = try Self.trigger(
            """
            version: 2
            method: PUT
            url: "{{$base_url}}/items/{{$body.sku}}"
            body: {action: transform, template: '{"qty": {{$body.qty}}}'}
            """)
        let preview = RequestPreview.forPayload(Array(#"{"sku": "A-1", "qty": 3}"#.utf8), trigger: trigger, timestamp: 5)
        #expect(preview.method == "PUT")
        #expect(preview.url == "https://api.example.com/v1/items/A-1")
        #expect(preview.body == #"{"qty":3}"#)
        #expect(preview.headers.contains { $0.name == "Authorization" && $0.value == "<redacted>" })
        #expect(preview.text.hasPrefix("PUT https://api.example.com/v1/items/A-1\nContent-Type: application/json\n"))
        let failing = RequestPreview.forPayload(Array("[]".utf8), trigger: trigger, timestamp: 5)
        #expect(failing.failure != nil)
    }
}
