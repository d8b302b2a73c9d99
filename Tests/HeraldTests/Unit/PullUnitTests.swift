import Foundation
import Testing

@testable import Herald

/// Pull consumers' pure parts: `consumers:` and `delivery: {pull}`, request bodies, ack ids,
/// and how a receive's `max` is shared.
@Suite("Pull consumers (pure)")
struct PullUnitTests {
    func parse(_ consumers: String, trigger: String = "delivery: {pull: billing}", listen: String = "127.0.0.1:9090")
        throws(ConfigError) -> HeraldConfig
    {
        let yaml = """
            database: {url: 'postgres://127.0.0.1/app'}
            stats: {listen: "\(listen)"}
            \(consumers)
            tables:
              - table: {schema: public, name: orders}
                event_triggers:
                  - name: order_events
                    definition: {insert: {columns: "*"}}
                    \(trigger)
            """
        return try ConfigLoader.parse(yaml: yaml, file: "herald.yaml", environment: ["TOKEN": "secret-token-1234"])
    }

    func failure(_ consumers: String, trigger: String = "delivery: {pull: billing}", listen: String = "127.0.0.1:9090")
        -> ConfigError?
    {
        do {
            _ = try parse(consumers, trigger: trigger, listen: listen)
            return nil
        } catch {
            return error
        }
    }

    @Test func aPullTriggerNamesItsConsumerAndNeedsNoWebhook() throws {
        let config = try parse("consumers: [{name: billing, token_from_env: TOKEN, visibility_timeout_sec: 45}]")
        #expect(config.consumers.map(\.name) == ["billing"])
        #expect(config.consumers.first?.visibilityTimeoutSeconds == 45)
        #expect(config.consumers.first?.token.value == "secret-token-1234")
        #expect("\(config.consumers)".contains("secret-token-1234") == false)
        // One redaction for every output surface knows the consumer tokens too.
        #expect(Redactor(config: config, environment: [:])("token secret-token-1234 leaked") == "token <redacted> leaked")
        let trigger = try #require(config.triggers.first)
        #expect(trigger.pullConsumer == "billing" && trigger.webhook.isEmpty)
        #expect(trigger.displayWebhook == "pull consumer billing")
        #expect(TriggerAdmin.delivery(of: trigger) == "pull by billing")
        // The worker never claims it: no route, so flow control never plans for it.
        #expect(!Claimer.routes(config).contains { $0.trigger == "order_events" })
        // Its timeout is no request's: the lease check leaves it alone.
        #expect(config.worker.leaseSeconds == WorkerSettings().leaseSeconds)
    }

    @Test(arguments: [
        ("consumers: [{name: other, token_from_env: TOKEN}]", "delivery: {pull: billing}", "127.0.0.1:9090",
         "consumer 'billing', which consumers: does not define"),
        ("consumers: [{name: billing, token_from_env: MISSING}]", "delivery: {pull: billing}", "127.0.0.1:9090",
         "MISSING is not set"),
        ("consumers: [{name: billing, token_from_env: TOKEN}]", "delivery: {pull: billing}", "",
         "set stats.listen"),
        ("consumers: [{name: 'bill ing', token_from_env: TOKEN}]", "delivery: {pull: billing}", "127.0.0.1:9090",
         "must be letters, digits"),
        ("consumers: [{name: billing, token_from_env: TOKEN}, {name: billing, token_from_env: TOKEN}]",
         "delivery: {pull: billing}", "127.0.0.1:9090", "duplicate consumer name"),
        ("consumers: [{name: billing, token_from_env: TOKEN, visibility_timeout_sec: 0}]", "delivery: {pull: billing}",
         "127.0.0.1:9090", "at least 1"),
        ("consumers: [{name: billing, token_from_env: TOKEN}]",
         "delivery: {pull: billing}\n        webhook: http://127.0.0.1:9/x", "127.0.0.1:9090",
         "'webhook' does not apply to a pull trigger"),
        ("consumers: [{name: billing, token_from_env: TOKEN}]", "delivery: {push: billing}", "127.0.0.1:9090",
         "unknown key 'push'"),
    ])
    func badPullConfigurationNamesTheCulprit(consumers: String, trigger: String, listen: String, message: String) throws {
        let error = try #require(failure(consumers, trigger: trigger, listen: listen))
        let all = ([error] + error.others).map(\.description).joined(separator: "\n")
        #expect(all.contains(message), "\(all)")
    }

    @Test func receiveBodiesHaveDefaultsAndBounds() throws {
        #expect(try ConsumerProtocol.parseReceive([]) == .init(max: 10, waitMilliseconds: 0))
        #expect(try ConsumerProtocol.parseReceive(Array(#"{"max": 250, "wait_ms": 1500}"#.utf8)) == .init(max: 250, waitMilliseconds: 1500))
        #expect(try ConsumerProtocol.parseReceive(Array(#"{"max": 1, "wait_ms": 0}"#.utf8)) == .init(max: 1, waitMilliseconds: 0))
        for bad in [#"{"max": 0}"#, #"{"max": 1001}"#, #"{"max": 2.5}"#, #"{"max": true}"#, #"{"wait_ms": 30001}"#, #"{"x": 1}"#, "[1]"] {
            #expect(throws: ConsumerProtocol.BadRequest.self) { try ConsumerProtocol.parseReceive(Array(bad.utf8)) }
        }
    }

    @Test func answerBodiesCarryAckIDsAndANackItsRetryAfter() throws {
        let ack = try ConsumerProtocol.parseAnswer(Array(#"{"ack_ids": ["a.1", "b.2"]}"#.utf8), allowsRetryAfter: false)
        #expect(ack == .init(ackIDs: ["a.1", "b.2"], retryAfterSeconds: nil))
        let nack = try ConsumerProtocol.parseAnswer(Array(#"{"ack_ids": ["a.1"], "retry_after": 30}"#.utf8), allowsRetryAfter: true)
        #expect(nack.retryAfterSeconds == 30)
        for bad in [#"{"ack_ids": []}"#, #"{"ack_ids": [1]}"#, #"{}"#, #"{"ack_ids": ["a.1"], "retry_after": -1}"#, #"{"ack_ids": ["a.1"], "retry_after": true}"#] {
            #expect(throws: ConsumerProtocol.BadRequest.self) {
                try ConsumerProtocol.parseAnswer(Array(bad.utf8), allowsRetryAfter: true)
            }
        }
        #expect(throws: ConsumerProtocol.BadRequest.self) {
            try ConsumerProtocol.parseAnswer(Array(#"{"ack_ids": ["a.1"], "retry_after": 3}"#.utf8), allowsRetryAfter: false)
        }
    }

    @Test func ackIDsRoundTripAndRejectGarbage() {
        let id = ConsumerProtocol.ackID(publicID: "5f1c2b7e-0000-4000-8000-000000000001", leaseToken: 1_800_000_000_123_456)
        let parsed = ConsumerProtocol.parseAckID(id)
        #expect(parsed?.publicID == "5f1c2b7e-0000-4000-8000-000000000001" && parsed?.leaseToken == 1_800_000_000_123_456)
        #expect(ConsumerProtocol.parseAckID("no-dot") == nil)
        #expect(ConsumerProtocol.parseAckID(".123") == nil)
        #expect(ConsumerProtocol.parseAckID("abc.x") == nil)
    }

    @Test func aReceivesMaxIsSharedAmongTheConsumersTriggers() {
        #expect(ConsumerProtocol.limits(max: 10, triggers: ["a"]) == ["a": 10])
        #expect(ConsumerProtocol.limits(max: 10, triggers: ["b", "a", "c"]) == ["a": 4, "b": 3, "c": 3])
        #expect(ConsumerProtocol.limits(max: 1, triggers: ["a", "b"]) == ["a": 1, "b": 1])
        #expect(ConsumerProtocol.limits(max: 5, triggers: []).isEmpty)
    }
}
