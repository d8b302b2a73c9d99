import Foundation
import Testing

@testable import Herald

/// `request_transform` end to end: Hasura's documented REST-connector transforms sent by
/// `herald run` to a real receiver, and `herald preview-request` on the same config.
@Suite("Request transform delivery", .enabled(if: TestEnvironment.integrationEnabled))
struct RequestTransformIntegrationTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    /// Triggers on `items` (id, name, email, city), one per documented transform, each after
    /// the fixture's own `items_hook`; all deliver to `receiver`.
    static func triggers(_ receiver: Receiver) -> String {
        let base = receiver.url("")
        return """
                  - name: hasura_v1_example
                    definition: {insert: {columns: "*"}}
                    retry_conf: {num_retries: 2, interval_sec: 0, timeout_sec: 5}
                    webhook: \(base)
                    headers: [{name: Authorization, value: bearer-xxxx}]
                    request_transform:
                      template_engine: Kriti
                      method: POST
                      url: '{{$base_url}}/api/v3/endpoint'
                      query_params: {query_param: xxxxx}
                      content_type: application/json
                      body: "{\\n  \\"table\\": {\\n    \\"name\\": {{$body.table.name}},\\n    \\"schema\\": {{$body.table.schema}}\\n  },\\n  \\"To\\": {\\n    \\"username\\": {{$body.event.data.new.name}},\\n    \\"email\\": {{$body.event.data.new.email}}\\n  }\\n}"
                  - name: path_and_query
                    definition: {insert: {columns: "*"}}
                    retry_conf: {num_retries: 2, interval_sec: 0, timeout_sec: 5}
                    webhook: \(base)/users
                    request_transform:
                      version: 2
                      method: PUT
                      url: '{{$base_url}}/{{$body.event.data.new.id}}'
                      query_params: {city: '{{$body.event.data.new.city}}', source: herald}
                  - name: form_post
                    definition: {insert: {columns: "*"}}
                    retry_conf: {num_retries: 2, interval_sec: 0, timeout_sec: 5}
                    webhook: \(base)/form
                    signing: {secret_from_env: TRANSFORM_SECRET}
                    request_transform:
                      version: 2
                      body:
                        action: x_www_form_urlencoded
                        form_template: {name: '{{$body.event.data.new.name}}', email: '{{$body.event.data.new.email}}'}
                  - name: get_without_body
                    definition: {insert: {columns: "*"}}
                    retry_conf: {num_retries: 2, interval_sec: 0, timeout_sec: 5}
                    webhook: \(base)/lookup
                    headers: [{name: X-Source, value: herald}]
                    request_transform:
                      version: 2
                      method: GET
                      query_params: 'email={{$body.event.data.new.email}}'
                      request_headers: {add_headers: {X-Row-Name: '{{$body.event.data.new.name}}'}, remove_headers: [X-Source]}
                      body: {action: remove}
                  - name: signed_json
                    definition: {insert: {columns: "*"}}
                    retry_conf: {num_retries: 2, interval_sec: 0, timeout_sec: 5}
                    webhook: \(base)/slack
                    signing: {secret_from_env: TRANSFORM_SECRET}
                    request_transform:
                      version: 2
                      method: PATCH
                      body: {action: transform, template: '{"text": "New user {{$body.event.data.new.name}} <{{$body.event.data.new.email}}>"}'}
                  - name: failing_template
                    definition: {insert: {columns: "*"}}
                    retry_conf: {num_retries: 2, interval_sec: 0, timeout_sec: 5}
                    webhook: \(base)/never
                    request_transform: {version: 2, url: '{{$base_url}}/{{$body.event.data.new.account.id}}'}
            """
    }

    static func fixture(_ receiver: Receiver) throws -> WorkerFixture {
        let fixture = try WorkerFixture(
            webhook: receiver.url("/default"), environment: ["TRANSFORM_SECRET": secret], extraTrigger: triggers(receiver))
        try fixture.connection.execute(script: "ALTER TABLE items ADD COLUMN email text, ADD COLUMN city text")
        return fixture
    }

    /// Curl handles are reused without a reset: with a pool of one, one handle carries a
    /// POST, a PUT, a GET without a body, a form POST and a PATCH in turn, and each request
    /// has its own method, body and headers, nothing left over from the one before.
    @Test func oneReusedHandleCarriesEveryMethodWithNothingLeftOver() throws {
        let receiver = try Receiver()
        let fixture = try WorkerFixture(
            webhook: receiver.url("/default"), worker: "http_pool_size: 1, http_per_host_limit: 1",
            environment: ["TRANSFORM_SECRET": Self.secret], extraTrigger: Self.triggers(receiver))
        try fixture.connection.execute(script: "ALTER TABLE items ADD COLUMN email text, ADD COLUMN city text")
        let worker = try WorkerProcess(configPath: fixture.configPath, environment: ["TRANSFORM_SECRET": Self.secret])
        for id in 1...3 {
            try fixture.connection.query(
                "INSERT INTO items (id, name, email, city) VALUES ($1::int, 'Ada', 'ada@example.com', 'Paris')", [String(id)])
        }
        #expect(try eventually { try fixture.count("status IN ('delivered', 'failed')") == 21 }, "\(worker.logExcerpt)")
        #expect(worker.terminate() == 0)
        let requests = try receiver.requests()
        #expect(requests.count == 18, "\(requests.map(\.path))")
        for request in requests {
            switch request.method {
            case "GET":
                #expect(request.path.hasPrefix("/lookup"))
                #expect(request.body.isEmpty && request.header("content-length") == nil && request.header("content-type") == nil)
            case "PUT":
                #expect(request.path.hasPrefix("/users/"))
                #expect(request.body.contains(#""trigger":{"name":"path_and_query"}"#))
            case "PATCH":
                #expect(request.path == "/slack")
                #expect(request.body.hasPrefix(#"{"text":"#))
            case "POST":
                #expect(["/default", "/api/v3/endpoint?query_param=xxxxx", "/form"].contains(request.path), "\(request.path)")
                #expect(!request.body.isEmpty)
                #expect(request.header("content-length") == String(request.body.utf8.count))
            default:
                Issue.record("unexpected method \(request.method) to \(request.path)")
            }
            #expect(request.header("x-row-name") == (request.path.hasPrefix("/lookup") ? "Ada" : nil), "\(request.path)")
        }
        #expect(Dictionary(grouping: requests, by: \.method).mapValues(\.count) == ["POST": 9, "PUT": 3, "GET": 3, "PATCH": 3])
    }

    @Test func hasurasDocumentedTransformsArriveAsDocumentedAndSignaturesVerify() throws {
        let receiver = try Receiver()
        let setup = try Self.fixture(receiver)
        try setup.connection.query(
            "INSERT INTO items (id, name, email, city) VALUES (7, 'Ada Lovelace', 'ada@example.com', 'San José')")
        let worker = try WorkerProcess(configPath: setup.configPath, environment: ["TRANSFORM_SECRET": Self.secret])
        // Seven triggers: six deliveries; the failing template is recorded, never sent.
        #expect(try eventually { try setup.count("status IN ('delivered', 'failed')") == 7 }, "\(worker.log)")
        #expect(worker.terminate() == 0)
        let requests = try receiver.requests()
        func request(_ prefix: String) throws -> Receiver.Request {
            try #require(requests.first { $0.path.hasPrefix(prefix) }, "no request to \(prefix) in \(requests.map(\.path))")
        }
        #expect(requests.count == 6, "\(requests.map(\.path))")

        let v1 = try request("/api/v3/endpoint")
        #expect(v1.method == "POST")
        #expect(v1.path == "/api/v3/endpoint?query_param=xxxxx")
        #expect(v1.header("content-type") == "application/json")
        #expect(v1.header("authorization") == "bearer-xxxx")
        #expect(
            try JSONSerialization.jsonObject(with: Data(v1.body.utf8)) as? NSDictionary
                == [
                    "table": ["name": "items", "schema": "public"],
                    "To": ["username": "Ada Lovelace", "email": "ada@example.com"],
                ])

        let put = try request("/users/")
        #expect(put.method == "PUT")
        #expect(put.path == "/users/7?city=San%20Jos%C3%A9&source=herald")
        let untransformed = try request("/default")
        // Without a body transform the payload is Herald's, as the untransformed trigger's.
        #expect(put.body.contains(#""trigger":{"name":"path_and_query"}"#))
        #expect(put.header("content-type") == "application/json")
        #expect(untransformed.method == "POST")

        let form = try request("/form")
        #expect(form.method == "POST")
        #expect(form.body == "name=Ada%20Lovelace&email=ada%40example.com")
        #expect(form.header("content-type") == "application/x-www-form-urlencoded")

        let get = try request("/lookup")
        #expect(get.method == "GET")
        #expect(get.path == "/lookup?email=ada@example.com")
        #expect(get.body.isEmpty)
        #expect(get.header("content-length") == nil)
        #expect(get.header("content-type") == nil)
        #expect(get.header("x-source") == nil)
        #expect(get.header("x-row-name") == "Ada Lovelace")
        #expect(get.header("webhook-id") != nil)

        let slack = try request("/slack")
        #expect(slack.method == "PATCH")
        #expect(slack.body == #"{"text":"New user Ada Lovelace <ada@example.com>"}"#)
        // The signature signs the body actually sent; the reference library agrees.
        let verified = try AlertDeliveryTests.verifiedPayloads([slack])
        #expect(verified.first?["text"] as? String == "New user Ada Lovelace <ada@example.com>")
        let formKey = try #require(WebhookSignature.decodeSecret(Self.secret))
        let formTimestamp = try #require(form.header("webhook-timestamp").flatMap(Int.init))
        #expect(
            form.header("webhook-signature")
                == WebhookSignature.sign(
                    key: formKey, messageID: form.header("webhook-id") ?? "", timestamp: formTimestamp,
                    body: Array(form.body.utf8)))

        // The template that fails on this row: one attempt, recorded as unsendable with
        // Kriti's message, final at once (no retry as if the receiver had failed).
        let failed = try setup.connection.query(
            """
            SELECT i.error_class, i.error_message, e.status FROM herald.invocation_log i
            JOIN herald.event_log e ON e.id = i.event_id WHERE e.trigger_name = 'failing_template'
            """)
        #expect(failed.rowCount == 1)
        #expect(failed[0, 0] == "unsendable")
        #expect(failed[0, 1]?.contains("request transform failed") == true, "\(failed[0, 1] ?? "")")
        #expect(failed[0, 2] == "failed")
    }

    @Test func previewRequestPrintsTheTransformedRequestForAPayloadFileAndForAStoredEvent() throws {
        let receiver = try Receiver()
        let setup = try Self.fixture(receiver)
        let environment = ["TRANSFORM_SECRET": Self.secret]
        let payload = try temporaryFile(
            #"{"event": {"data": {"new": {"id": 3, "name": "Grace", "email": "g@example.com", "city": "Arlington"}}}}"#,
            suffix: ".json")
        let fromFile = try runHerald(["preview-request", "path_and_query", "--payload", payload, "--config", setup.configPath], environment: environment)
        #expect(fromFile.status == 0, "\(fromFile.stderr)")
        #expect(fromFile.stdout.hasPrefix("PUT \(receiver.url("/users/3?city=Arlington&source=herald"))\n"), "\(fromFile.stdout)")

        try setup.connection.query("INSERT INTO items (id, name, email, city) VALUES (9, 'Linus', 'l@example.com', 'Oslo')")
        let number = try #require(
            try setup.connection.query("SELECT id FROM herald.event_log WHERE trigger_name = 'get_without_body'")[0, 0])
        let fromEvent = try runHerald(["preview-request", "get_without_body", "--event", number, "--config", setup.configPath], environment: environment)
        #expect(fromEvent.status == 0, "\(fromEvent.stderr)")
        let lines = fromEvent.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "GET \(receiver.url("/lookup?email=l@example.com"))")
        #expect(lines.contains("X-Row-Name: Linus"))
        #expect(!lines.contains { $0.hasPrefix("X-Source") })
        #expect(lines.contains { $0.hasPrefix("webhook-id: ") })
        #expect(lines.contains("(no body)"))

        let signedEvent = try #require(
            try setup.connection.query("SELECT id FROM herald.event_log WHERE trigger_name = 'hasura_v1_example'")[0, 0])
        let v1 = try runHerald(["preview-request", "hasura_v1_example", "--event", signedEvent, "--config", setup.configPath], environment: environment)
        #expect(v1.stdout.contains("Authorization: <redacted>"), "\(v1.stdout)")
        #expect(v1.stdout.contains(#""username": "Linus""#) || v1.stdout.contains(#""username":"Linus""#), "\(v1.stdout)")

        let failing = try #require(
            try setup.connection.query("SELECT id FROM herald.event_log WHERE trigger_name = 'failing_template'")[0, 0])
        let refused = try runHerald(["preview-request", "failing_template", "--event", failing, "--config", setup.configPath], environment: environment)
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("not sent: request transform failed"), "\(refused.stdout)")
        // Nothing was sent by any preview.
        #expect(try receiver.requests().isEmpty)
    }
}
