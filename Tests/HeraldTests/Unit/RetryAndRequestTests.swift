import Foundation
import Testing

@testable import Herald

@Suite("Retry policy")
struct RetryPolicyTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func policy(retries: Int = 3, interval: Int = 10, backoff: RetryBackoff = RetryBackoff()) -> RetryPolicy {
        RetryPolicy(
            retry: RetryConfig(numRetries: retries, intervalSeconds: interval, timeoutSeconds: 5), backoff: backoff,
            maxRetryAfterSeconds: 600)
    }

    @Test(arguments: [200, 201, 204, 299])
    func twoHundredsAreDelivered(_ status: Int) {
        #expect(policy().decide(attempt: 1, result: .response(status: status, retryAfter: nil), now: now) == .delivered)
    }

    @Test(arguments: [301, 302, 400, 404, 500, 503])
    func otherStatusesRetryWithFixedInterval(_ status: Int) {
        #expect(
            policy().decide(attempt: 1, result: .response(status: status, retryAfter: nil), now: now)
                == .retry(afterSeconds: 10))
    }

    @Test func failsAfterNumRetriesPlusOneAttempts() {
        let policy = policy(retries: 2)
        let failure = AttemptResult.failure(.connection, message: "refused")
        #expect(policy.decide(attempt: 1, result: failure, now: now) == .retry(afterSeconds: 10))
        #expect(policy.decide(attempt: 2, result: failure, now: now) == .retry(afterSeconds: 10))
        #expect(policy.decide(attempt: 3, result: failure, now: now) == .failed)
        #expect(self.policy(retries: 0).decide(attempt: 1, result: failure, now: now) == .failed)
    }

    @Test func exponentialBackoffDoublesWithFullJitterUpToTheCap() {
        let policy = policy(retries: 20, interval: 10, backoff: RetryBackoff(strategy: .exponential, maxIntervalSeconds: 60))
        let ceilings = (1...6).map { policy.delay(afterAttempt: $0, random: { 0.999999 }) }
        #expect(ceilings.map { $0.rounded() } == [10, 20, 40, 60, 60, 60])
        #expect(policy.delay(afterAttempt: 3, random: { 0.5 }) == 20)
        #expect(policy.delay(afterAttempt: 3, random: { 0 }) == 0)
        #expect(policy.delay(afterAttempt: 200, random: { 0.5 }) == 30)
    }

    @Test func retryAfterSecondsAndHTTPDateAreHonouredAndCapped() {
        let policy = policy()
        #expect(
            policy.decide(attempt: 1, result: .response(status: 503, retryAfter: "7"), now: now)
                == .retry(afterSeconds: 7))
        #expect(
            policy.decide(attempt: 1, result: .response(status: 429, retryAfter: "86400"), now: now)
                == .retry(afterSeconds: 600))
        let date = "Fri, 15 Jan 2027 08:00:30 GMT"
        let expected = RetryPolicy.retryAfterSeconds(date, now: now)
        #expect(expected == Date(timeIntervalSince1970: 1_800_000_030).timeIntervalSince(now) + 0)
        #expect(RetryPolicy.retryAfterSeconds("soon", now: now) == nil)
        #expect(
            policy.decide(attempt: 1, result: .response(status: 503, retryAfter: "soon"), now: now)
                == .retry(afterSeconds: 10))
        #expect(policy.decide(attempt: 4, result: .response(status: 503, retryAfter: "1"), now: now) == .failed)
    }

    @Test func pastHTTPDateMeansNow() {
        #expect(RetryPolicy.retryAfterSeconds("Wed, 21 Oct 2015 07:28:00 GMT", now: now) == 0)
    }
}

@Suite("Delivery request")
struct DeliveryRequestTests {
    let installation = EventIDKey(bytes: Array(0..<32), v2From: 1)

    func event(tries: Int = 0) -> ClaimedEvent {
        ClaimedEvent(
            id: 42, triggerName: "order_changes", table: TableName(schema: "public", name: "Order \"Items\""),
            payload: #"{"op": "INSERT", "data": {"old": null, "new": {"id": 1}}}"#, tries: tries,
            createdAt: "2026-11-22T10:15:30.123456Z", createdAtEpoch: 0)
    }

    func trigger() -> TriggerConfig {
        var trigger = TriggerConfig(
            name: "order_changes", table: TableName(schema: "public", name: "Order \"Items\""),
            webhook: "http://127.0.0.1:8000/hook")
        trigger.retry.numRetries = 5
        trigger.headers = [
            HeaderConfig(name: "X-Api-Key", value: "secret-key", source: .environment("KEY")),
            HeaderConfig(name: "X-Source", value: "herald", source: .literal),
        ]
        return trigger
    }

    @Test func payloadHasHasuraShape() throws {
        let request = DeliveryRequest(event: event(tries: 2), trigger: trigger(), installation: installation, timestamp: 1)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
        #expect(json["id"] as? String == request.messageID)
        #expect(json["created_at"] as? String == "2026-11-22T10:15:30.123456Z")
        #expect((json["table"] as? [String: String]) == ["schema": "public", "name": "Order \"Items\""])
        #expect((json["trigger"] as? [String: String]) == ["name": "order_changes"])
        #expect((json["event"] as? [String: Any])?["op"] as? String == "INSERT")
        #expect((json["delivery_info"] as? [String: Int]) == ["max_retries": 5, "current_retry": 2])
    }

    @Test func hasuraCreatedAtCompatDropsTheOffsetOnly() throws {
        var trigger = trigger()
        trigger.createdAtFormat = .hasura
        let request = DeliveryRequest(event: event(), trigger: trigger, installation: installation, timestamp: 1)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
        #expect(json["created_at"] as? String == "2026-11-22T10:15:30.123456")
    }

    @Test func importedHasuraEventKeepsHasurasIDAsPayloadIDAndWebhookID() throws {
        var event = event()
        event.importedID = "0b7f9a7e-3f8e-4f33-9a56-7f0f3c1d2e4b"
        let request = DeliveryRequest(event: event, trigger: trigger(), installation: installation, timestamp: 1)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
        #expect(json["id"] as? String == event.importedID)
        #expect(request.headers.first { $0.name == "webhook-id" }?.value == event.importedID)
    }

    @Test func hasurasHeadersComeFirstAndConfiguredHeadersAfter() {
        let request = DeliveryRequest(event: event(), trigger: trigger(), installation: installation, timestamp: 1)
        #expect(Array(request.headers.map(\.name).prefix(2)) == ["Content-Type", "User-Agent"])
        #expect(request.headers.first?.value == "application/json")
        #expect(Array(request.headers.map(\.name).suffix(2)) == ["X-Api-Key", "X-Source"])
    }

    @Test func headersCarryStandardWebhooksFieldsAndRedactSecrets() throws {
        var trigger = trigger()
        trigger.signing = SigningConfig(
            secretEnvironmentVariable: "S", key: try #require(WebhookSignature.decodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")))
        let request = DeliveryRequest(event: event(), trigger: trigger, installation: installation, timestamp: 1_614_265_330)
        let headers = Dictionary(uniqueKeysWithValues: request.headers.map { ($0.name, $0.value) })
        #expect(headers["Content-Type"] == "application/json")
        #expect(headers["User-Agent"] == "herald/\(Herald.version)")
        #expect(headers["webhook-id"] == request.messageID)
        #expect(headers["webhook-timestamp"] == "1614265330")
        #expect(
            headers["webhook-signature"]
                == WebhookSignature.sign(
                    key: trigger.signing!.key, messageID: request.messageID, timestamp: 1_614_265_330, body: request.body))
        #expect(headers["X-Api-Key"] == "secret-key")
        let recorded = try #require(
            try JSONSerialization.jsonObject(with: Data(request.recordedHeaders.utf8)) as? [String: String])
        #expect(recorded["X-Api-Key"] == "<redacted>")
        #expect(recorded["X-Source"] == "herald")
        #expect(!request.recordedHeaders.contains("secret-key"))
    }

    /// Ids are what receivers deduplicate on, so they must never change between versions: a
    /// redelivery after an upgrade carries the id of the first attempt. Pinned values from an
    /// independent implementation (Python: hmac for version 1, a SipHash-2-4 checked against
    /// the reference vectors for version 2; four-round Feistel either way).
    @Test func eventIDsArePinnedAcrossVersions() {
        // Version 1 (HMAC-SHA256 rounds): an installation whose events all predate schema 20.
        let v1 = EventIDKey(bytes: Array(repeating: 7, count: 32), v2From: .max)
        #expect(EventID.uuid(key: v1, number: 42) == "27d0d78a-04b7-4fd7-b0d3-84748cbf69ba")
        #expect(EventID.uuid(key: v1, number: 1) == "9e2f8037-1ba3-478d-941b-43a55cfab974")
        #expect(EventID.uuid(key: v1, number: 1 << 62) == "28b46d3d-c775-41c6-8a55-06c6122edca4")
        #expect(EventID.number(from: "27d0d78a-04b7-4fd7-b0d3-84748cbf69ba", key: v1) == 42)
        // Version 2 (SipHash-2-4 rounds, keyed by HMAC(id_key, "herald event id v2")).
        let v2 = EventIDKey(bytes: Array(repeating: 7, count: 32), v2From: 1)
        #expect(EventID.uuid(key: v2, number: 42) == "35a84238-092c-45df-bd2c-1a5f3c4d7170")
        #expect(EventID.uuid(key: v2, number: 1) == "4a7ba4d3-4fec-4150-af5a-eaaca54ebd61")
        #expect(EventID.uuid(key: v2, number: 1 << 62) == "3ccab030-e52e-4ae8-9340-b0daad45511b")
        #expect(EventID.number(from: "35a84238-092c-45df-bd2c-1a5f3c4d7170", key: v2) == 42)
    }

    /// Across the boundary schema 20 recorded, each number keeps one id: those below it the
    /// version 1 id their first attempts carried, those from it version 2; both decode.
    @Test func eventIDsKeepTheirVersionAcrossTheBoundary() {
        let key = EventIDKey(bytes: Array(repeating: 7, count: 32), v2From: 100)
        #expect(EventID.uuid(key: key, number: 42) == "27d0d78a-04b7-4fd7-b0d3-84748cbf69ba")
        #expect(EventID.number(from: "27d0d78a-04b7-4fd7-b0d3-84748cbf69ba", key: key) == 42)
        let v2 = EventIDKey(bytes: Array(repeating: 7, count: 32), v2From: 1)
        #expect(EventID.uuid(key: key, number: 100) == EventID.uuid(key: v2, number: 100))
        #expect(EventID.uuid(key: key, number: 99) != EventID.uuid(key: v2, number: 99))
        for number: Int64 in [1, 98, 99, 100, 101, 1 << 40] {
            #expect(EventID.number(from: EventID.uuid(key: key, number: number), key: key) == number)
        }
        // A version 2 id of a number below the boundary was never handed out: it finds nothing,
        // and so does a version 1 id of a number past it.
        #expect(EventID.number(from: "35a84238-092c-45df-bd2c-1a5f3c4d7170", key: key) == nil)
        let v1 = EventIDKey(bytes: Array(repeating: 7, count: 32), v2From: .max)
        #expect(EventID.number(from: EventID.uuid(key: v1, number: 500), key: key) == nil)
    }

    /// The reference vectors of SipHash-2-4 (key 00…0f, message 00 01 … of each length).
    @Test func sipHashMatchesTheReferenceVectors() {
        let sip = SipHash24(key: Array(0..<16))
        func hash(_ length: Int) -> UInt64 {
            let message = (0..<length).map { UInt8($0) }
            return message.withUnsafeBytes { sip.hash($0) }
        }
        #expect(hash(0) == 0x726f_db47_dd0e_0e31)
        #expect(hash(8) == 0x93f5_f579_9a93_2462)
        #expect(hash(9) == 0x9e00_82df_0ba9_e4b0)
        #expect(hash(15) == 0xa129_ca61_49be_45e5)
    }

    @Test func eventIDIsAStableVersion4UUIDThatMapsBackOnlyWithItsKey() throws {
        let id = EventID.uuid(key: installation, number: 42)
        #expect(id == EventID.uuid(key: installation, number: 42))
        #expect(id != EventID.uuid(key: installation, number: 43))
        let uuid = try #require(UUID(uuidString: id))
        #expect(uuid.uuidString.lowercased() == id)
        #expect(Array(id)[14] == "4")
        #expect("89ab".contains(Array(id)[19]))
        #expect(EventID.number(from: id, key: installation) == 42)
        #expect(EventID.number(from: id.uppercased(), key: installation) == 42)
        #expect(EventID.number(from: "42", key: installation) == 42)
        #expect(EventID.number(from: id, key: EventIDKey(bytes: Array(repeating: 7, count: 32), v2From: 1)) == nil)
        #expect(EventID.number(from: "nonsense", key: installation) == nil)
        #expect(EventID.number(from: UUID().uuidString, key: installation) == nil)
    }

    @Test func consecutiveEventIDsShareNoVisiblePrefixOrCounter() {
        let ids = (1...1000).map { EventID.uuid(key: installation, number: Int64($0)) }
        #expect(Set(ids).count == 1000)
        // With a counter or an installation prefix inside, neighbours would share leading or
        // trailing characters far more often than random UUIDs do (1 in 16 per character).
        let samePrefix = zip(ids, ids.dropFirst()).filter { $0.prefix(4) == $1.prefix(4) }.count
        let sameSuffix = zip(ids, ids.dropFirst()).filter { $0.suffix(4) == $1.suffix(4) }.count
        #expect(samePrefix < 5)
        #expect(sameSuffix < 5)
        for id in ids.prefix(50) { #expect(EventID.number(from: id, key: installation) == Int64(ids.firstIndex(of: id)! + 1)) }
    }

    @Test func hostKeyIncludesSchemeAndDefaultPort() {
        #expect(DeliveryJob.hostKey("http://Example.com/x") == "http://example.com:80")
        #expect(DeliveryJob.hostKey("https://example.com:8443/x") == "https://example.com:8443")
    }

    @Test func arrayLiteralsQuoteEverything() {
        #expect(PGArray.literal(["a", nil, #"b"c"#, "d\\e", "{x,y}"]) == #"{"a",NULL,"b\"c","d\\e","{x,y}"}"#)
        #expect(PGArray.literal([1, 2] as [Int64]) == "{1,2}")
        #expect(PGArray.literal([] as [Int64]) == "{}")
        #expect(
            PGArray.literal([0, nil, -7, 1_733_348_193_123_456, .max, .min] as [Int64?])
                == "{0,NULL,-7,1733348193123456,9223372036854775807,-9223372036854775808}")
    }

    @Test func headerObjectsArrayLiteralEqualsQuotingEachObjectsJSON() {
        let lists: [[DeliveryRequest.Header]] = [
            [
                .init(name: "Content-Type", value: "application/json", isSecret: false),
                .init(name: "X-Quote\"d", value: #"a"b\c"#, isSecret: false),
                .init(name: "X-Control", value: "line\nbreak\u{01}tab\t", isSecret: false),
                .init(name: "X-Secret", value: "hunter2", isSecret: true),
                .init(name: "X-Ünïcode", value: "välue {with,braces}", isSecret: false),
            ],
            [],
            [.init(name: "webhook-id", value: "6f1c", isSecret: false)],
        ]
        let expected = PGArray.literal(lists.map { Optional(DeliveryRequest.recordedJSON($0)) })
        #expect(PGArray.headerObjectsLiteral(lists) == expected)
        #expect(!expected.contains("hunter2"))
        #expect(PGArray.headerObjectsLiteral([]) == "{}")
    }

    @Test func payloadBytesEscapeNamesAndSpliceTheStoredEvent() throws {
        var trigger = TriggerConfig(name: "tr\"ig", table: TableName(schema: "sch\\ema", name: "ta\nble"), webhook: "http://127.0.0.1:1/")
        trigger.retry.numRetries = 7
        let event = ClaimedEvent(
            id: 9, triggerName: trigger.name, table: trigger.table, payload: #"{"op":"INSERT","data":{"old":null,"new":{"a":"é"}}}"#,
            tries: 2, createdAt: "2026-01-02T03:04:05.000006Z", createdAtEpoch: 0)
        let bytes = DeliveryRequest.payloadBytes(event: event, trigger: trigger, messageID: "id-1")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect((object["table"] as? [String: String]) == ["schema": "sch\\ema", "name": "ta\nble"])
        #expect((object["trigger"] as? [String: String]) == ["name": "tr\"ig"])
        #expect((object["delivery_info"] as? [String: Int]) == ["max_retries": 7, "current_retry": 2])
        #expect(object["id"] as? String == "id-1")
        #expect(object["created_at"] as? String == "2026-01-02T03:04:05.000006Z")
        #expect(DeliveryRequest.payload(event: event, trigger: trigger, messageID: "id-1") == String(decoding: bytes, as: UTF8.self))
    }

    @Test func jsonEscapingHandlesControlCharacters() {
        #expect(DeliveryRequest.json("a\"b\\c\n\u{01}") == #""a\"b\\c\n\u0001""#)
    }
}
