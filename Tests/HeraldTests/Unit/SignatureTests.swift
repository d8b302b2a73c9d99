import Testing

@testable import Herald

@Suite("Standard Webhooks signature")
struct SignatureTests {
    @Test func matchesTheSpecificationTestVector() throws {
        let key = try #require(WebhookSignature.decodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let signature = WebhookSignature.sign(
            key: key, messageID: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
            body: Array(#"{"test": 2432232314}"#.utf8))
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func differentBodyGivesDifferentSignature() throws {
        let key = try #require(WebhookSignature.decodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let a = WebhookSignature.sign(key: key, messageID: "m", timestamp: 1, body: Array("a".utf8))
        let b = WebhookSignature.sign(key: key, messageID: "m", timestamp: 1, body: Array("b".utf8))
        #expect(a != b)
    }

    @Test func rejectsSecretsThatAreNotBase64() {
        #expect(WebhookSignature.decodeSecret("whsec_!!!") == nil)
        #expect(WebhookSignature.decodeSecret("whsec_") == nil)
    }
}
