import Foundation
import Testing

@testable import Herald

@Suite("Alerts")
struct AlertTests {
    static let start = ContinuousClock.now
    static let wallStart = Date(timeIntervalSince1970: 1_795_000_000)

    /// A time `seconds` after the test's start, on both clocks.
    static func at(_ seconds: Double) -> (now: ContinuousClock.Instant, date: Date) {
        (start + .milliseconds(Int(seconds * 1000)), wallStart.addingTimeInterval(seconds))
    }

    static func failed(_ number: Int, trigger: String = "orders", at seconds: Double = 0) -> PendingAlert {
        PendingAlert(
            alert: .eventFailed(
                trigger: trigger, eventID: "event-\(number)", eventNumber: Int64(number),
                table: TableName(schema: "public", name: "orders"), op: "INSERT", tries: 6, lastStatus: 500,
                errorClass: "http", error: "HTTP 500", createdAt: "2026-11-23T17:00:00Z"),
            occurredAt: at(seconds).date)
    }

    // MARK: Digest

    @Test func burstOfFiveHundredGivesFiveSingleAlertsAndOneDigestAtTheIntervalEnd() throws {
        var digest = AlertDigest(intervalSeconds: 60)
        var decisions: [AlertDigest.Decision] = []
        for number in 0..<500 {
            let moment = Self.at(Double(number) / 10)
            decisions.append(digest.admit(Self.failed(number, at: Double(number) / 10), now: moment.now))
        }
        #expect(decisions.prefix(5).allSatisfy { $0 == .send })
        #expect(decisions.dropFirst(5).allSatisfy { $0 == .fold })
        #expect(digest.takeDue(now: Self.at(59.9).now).isEmpty)
        #expect(digest.nextDue == Self.at(60).now)

        let due = digest.takeDue(now: Self.at(60).now)
        let sent = try #require(due.first)
        #expect(due.count == 1)
        #expect(sent.alert.type == "herald.digest")
        #expect(sent.alert.data["alert_type"] == "herald.event.failed")
        #expect(sent.alert.data["count"] == 495)
        #expect(sent.alert.data["first_ids"] == .strings((5..<15).map { "event-\($0)" }))
        #expect(sent.alert.data["triggers"] == .strings(["orders"]))
        #expect(sent.alert.data["interval_sec"] == 60)
        #expect(sent.occurredAt == Self.at(49.9).date)
        #expect(digest.nextDue == nil)
        #expect(digest.takeDue(now: Self.at(120).now).isEmpty)
    }

    @Test func aNewIntervalSendsSingleAlertsAgain() {
        var digest = AlertDigest(intervalSeconds: 10)
        for number in 0..<7 { _ = digest.admit(Self.failed(number), now: Self.at(0).now) }
        #expect(digest.takeDue(now: Self.at(10).now).count == 1)
        #expect(digest.admit(Self.failed(7, at: 11), now: Self.at(11).now) == .send)
    }

    @Test func quietIntervalIsForgottenWithoutADigest() {
        var digest = AlertDigest(intervalSeconds: 10)
        for number in 0..<5 { #expect(digest.admit(Self.failed(number), now: Self.at(0).now) == .send) }
        #expect(digest.nextDue == nil)
        #expect(digest.takeDue(now: Self.at(10).now).isEmpty)
        #expect(digest.windows.isEmpty)
        #expect(digest.admit(Self.failed(5, at: 10), now: Self.at(10).now) == .send)
    }

    @Test func typesAreCountedApart() {
        var digest = AlertDigest(intervalSeconds: 60)
        for number in 0..<5 { _ = digest.admit(Self.failed(number), now: Self.at(0).now) }
        let disabled = PendingAlert(
            alert: .triggerDisabled(trigger: "orders", reason: "410 Gone", by: "receiver"), occurredAt: Self.wallStart)
        #expect(digest.admit(disabled, now: Self.at(1).now) == .send)
        #expect(digest.admit(Self.failed(5), now: Self.at(1).now) == .fold)
    }

    @Test func digestListsTriggersOnceEachForTriggerAlerts() {
        var digest = AlertDigest(intervalSeconds: 60, individualLimit: 0)
        for trigger in ["a", "b", "a", "c"] {
            let alert = PendingAlert(
                alert: .circuitOpened(trigger: trigger, failureRatio: 0.9, requests: 12, openSeconds: 30),
                occurredAt: Self.wallStart)
            _ = digest.admit(alert, now: Self.at(0).now)
        }
        let sent = digest.takeAll()
        #expect(sent.count == 1)
        #expect(sent.first?.alert.data["first_ids"] == .strings(["a", "b", "a", "c"]))
        #expect(sent.first?.alert.data["triggers"] == .strings(["a", "b", "c"]))
        #expect(sent.first?.alert.data["count"] == 4)
    }

    // MARK: Inbox

    @Test func fullQueueFoldsIntoTheDigestInsteadOfGrowing() throws {
        var inbox = AlertInbox(digest: AlertDigest(intervalSeconds: 10), capacity: 2)
        func take(at seconds: Double) -> PendingAlert? { inbox.next(now: Self.at(seconds).now) }
        let admissions = (0..<3).map { inbox.offer(Self.failed($0), now: Self.at(0).now) }
        #expect(admissions == [.queued, .queued, .overflowed])
        #expect(inbox.count == 2)
        // The window is over but the queue is full: the digest waits for room.
        #expect(take(at: 11) == Self.failed(0))
        #expect(inbox.offer(Self.failed(3), now: Self.at(11).now) == .queued)
        let order = (0..<4).map { _ in take(at: 11) }
        #expect(order.prefix(2) == [Self.failed(1), Self.failed(3)])
        let digest = try #require(order[2])
        #expect(digest.alert.type == "herald.digest")
        #expect(digest.alert.data["count"] == 1)
        #expect(digest.alert.data["first_ids"] == .strings(["event-2"]))
        #expect(order[3] == nil)
    }

    @Test func windowWhoseDigestWaitsKeepsFolding() {
        var digest = AlertDigest(intervalSeconds: 10, individualLimit: 1)
        _ = digest.admit(Self.failed(0), now: Self.at(0).now)
        _ = digest.admit(Self.failed(1), now: Self.at(0).now)
        #expect(digest.takeDue(now: Self.at(10).now, limit: 0).isEmpty)
        #expect(digest.admit(Self.failed(2, at: 12), now: Self.at(12).now) == .fold)
        let sent = digest.takeDue(now: Self.at(12).now)
        #expect(sent.first?.alert.data["count"] == 2)
        #expect(sent.first?.occurredAt == Self.at(12).date)
    }

    @Test func drainReturnsQueuedAlertsThenOpenDigests() {
        var inbox = AlertInbox(digest: AlertDigest(intervalSeconds: 60, individualLimit: 1), capacity: 10)
        for number in 0..<4 { _ = inbox.offer(Self.failed(number), now: Self.at(0).now) }
        let rest = inbox.drain()
        #expect(rest.map(\.alert.type) == ["herald.event.failed", "herald.digest"])
        #expect(rest.last?.alert.data["count"] == 3)
        #expect(inbox.count == 0)
        #expect(inbox.nextDigestDue == nil)
    }

    // MARK: Message

    @Test func payloadHasTheStandardWebhooksShape() throws {
        var pending = Self.failed(42)
        pending.alert.data["ratio"] = 0.5
        pending.alert.data["flag"] = true
        pending.alert.data["list"] = .strings(["x", "\"y\""])
        pending.alert.data["error"] = "line\nbreak \"quoted\""
        let message = AlertMessage(pending)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(message.body)) as? [String: Any])
        #expect(Set(object.keys) == ["type", "timestamp", "data"])
        #expect(object["type"] as? String == "herald.event.failed")
        #expect(object["timestamp"] as? String == "2026-11-18T11:06:40.000Z")
        let data = try #require(object["data"] as? [String: Any])
        #expect(data["event_id"] as? String == "event-42")
        #expect(data["event_number"] as? Int == 42)
        #expect(data["table"] as? String == "public.orders")
        #expect(data["last_status"] as? Int == 500)
        #expect(data["ratio"] as? Double == 0.5)
        #expect(data["flag"] as? Bool == true)
        #expect(data["list"] as? [String] == ["x", "\"y\""])
        #expect(data["error"] as? String == "line\nbreak \"quoted\"")
        #expect(message.id.hasPrefix("alert_"))
        #expect(AlertMessage(pending).id != message.id)
    }

    @Test func missingValuesAreNullAndErrorsAreCut() throws {
        let alert = Alert.eventFailed(
            trigger: "t", eventID: "e", eventNumber: 1, table: TableName(schema: "s", name: "n"), op: "DELETE",
            tries: 1, lastStatus: nil, errorClass: "timeout", error: String(repeating: "x", count: 2000),
            createdAt: "2026-11-23T17:00:00Z")
        #expect(alert.data["last_status"] == .null)
        #expect(alert.data["error"] == .string(String(repeating: "x", count: Alert.errorExcerptLimit)))
        let body = String(decoding: AlertMessage(PendingAlert(alert: alert, occurredAt: Self.wallStart)).body, as: UTF8.self)
        #expect(body.contains(#""last_status":null"#))
        #expect(AlertValue.double(.nan).json == "null")
    }

    @Test func signatureMatchesTheStandardWebhooksTestVector() throws {
        var config = AlertsConfig(webhook: "http://127.0.0.1/")
        config.signing = SigningConfig(
            secretEnvironmentVariable: "S", key: try #require(WebhookSignature.decodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")))
        let message = AlertMessage(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", type: "test", body: Array(#"{"test": 2432232314}"#.utf8))
        let headers = Dictionary(uniqueKeysWithValues: message.headers(timestamp: 1_614_265_330, config: config).map { ($0.name, $0.value) })
        #expect(headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(headers["webhook-id"] == "msg_p5jXN8AQM9LWM0D4loKWxJek")
        #expect(headers["webhook-timestamp"] == "1614265330")
        #expect(headers["Content-Type"] == "application/json")
        #expect(headers["User-Agent"] == "herald/\(Herald.version)")
    }

    @Test func unsignedAlertsCarryConfiguredHeadersAndNoSignature() {
        var config = AlertsConfig(webhook: "http://127.0.0.1/")
        config.headers = [HeaderConfig(name: "Authorization", value: "Bearer t", source: .environment("T"))]
        let headers = AlertMessage(Self.failed(1)).headers(timestamp: 1, config: config)
        #expect(!headers.contains { $0.name == "webhook-signature" })
        #expect(headers.last == DeliveryRequest.Header(name: "Authorization", value: "Bearer t", isSecret: true))
    }

    // MARK: Configuration (parsed with the configuration suite's helpers)

    @Test func alertsSectionIsOptional() throws {
        #expect(try ConfigTests().parse("").alerts == nil)
    }

    @Test func alertsSectionParsesEveryKey() throws {
        let config = try ConfigTests().parse(
            """
            alerts:
              webhook_from_env: OPS_URL
              signing: {secret_from_env: OPS_SECRET}
              digest_interval_sec: 300
              headers:
                - {name: Authorization, value_from_env: OPS_TOKEN}
                - {name: X-Team, value: payments}
            """,
            environment: [
                "OPS_URL": "https://user:pw@ops.example.com/herald", "OPS_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "OPS_TOKEN": "Bearer abc",
            ])
        let alerts = try #require(config.alerts)
        #expect(alerts.webhook == "https://user:pw@ops.example.com/herald")
        #expect(alerts.displayWebhook == "<env OPS_URL>")
        #expect(alerts.signing?.secretEnvironmentVariable == "OPS_SECRET")
        #expect(alerts.signing?.key == WebhookSignature.decodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        #expect(alerts.digestIntervalSeconds == 300)
        #expect(alerts.headers == [
            HeaderConfig(name: "Authorization", value: "Bearer abc", source: .environment("OPS_TOKEN")),
            HeaderConfig(name: "X-Team", value: "payments", source: .literal),
        ])
    }

    @Test func digestIntervalDefaultsToSixtySeconds() throws {
        let alerts = try #require(try ConfigTests().parse("alerts: {webhook: 'http://127.0.0.1:9000/alerts'}").alerts)
        #expect(alerts.digestIntervalSeconds == 60)
        #expect(alerts.signing == nil)
        #expect(alerts.displayWebhook == "http://127.0.0.1:9000/alerts")
    }

    @Test(arguments: [
        ("alerts: {digest_interval_sec: 60}", "alerts", "missing required key 'webhook'"),
        ("alerts: {webhook: 'http://a/', webhook_from_env: X}", "alerts", "not both"),
        ("alerts: {webhook: 'ftp://a/'}", "alerts.webhook", "http:// or https://"),
        ("alerts: {webhook: 'http://a/', digest_interval_sec: 0}", "alerts.digest_interval_sec", "at least 1"),
        ("alerts: {webhook: 'http://a/', digest: 5}", "alerts.digest", "unknown key 'digest'"),
        ("alerts: {webhook: 'http://a/', signing: {secret_from_env: NOPE}}", "alerts.signing.secret_from_env", "NOPE is not set"),
        ("alerts: {webhook: 'http://a/', signing: {secret_from_env: BAD}}", "alerts.signing.secret_from_env", "not a Standard Webhooks secret"),
        ("alerts: {webhook: 'http://a/', headers: [{name: 'a b', value: x}]}", "alerts.headers[0].name", "not a valid HTTP header name"),
        ("alerts: {webhook_from_env: NOPE}", "alerts.webhook_from_env", "NOPE is not set"),
    ])
    func badAlertsSectionNamesTheKey(yaml: String, key: String, message: String) throws {
        let error = try #require(ConfigTests().failure(yaml, environment: ["BAD": "whsec_!!!"]))
        #expect(error.key == key)
        #expect(error.message.contains(message), "\(error)")
    }

    @Test func webhookFromEnvironmentIsNotEchoedWhenInvalid() throws {
        let error = try #require(ConfigTests().failure("alerts: {webhook_from_env: OPS_URL}", environment: ["OPS_URL": "not a url s3cret"]))
        #expect(error.key == "alerts.webhook_from_env")
        #expect(!error.description.contains("s3cret"))
    }
}
