import Crypto
import Foundation

/// Standard Webhooks 1.0 signatures: `v1,` + base64(HMAC-SHA256(key, "id.timestamp.body")),
/// keyed by the base64-decoded part of a `whsec_…` secret.
public enum WebhookSignature {
    /// The HMAC key inside a `whsec_` secret (the prefix is optional, as in the reference
    /// libraries); nil when the rest is not base64 or is empty.
    public static func decodeSecret(_ secret: String) -> [UInt8]? {
        let encoded = secret.hasPrefix("whsec_") ? String(secret.dropFirst("whsec_".count)) : secret
        guard let data = Data(base64Encoded: encoded), !data.isEmpty else { return nil }
        return Array(data)
    }

    /// The `webhook-signature` header value for one attempt.
    public static func sign(key: [UInt8], messageID: String, timestamp: Int, body: some DataProtocol) -> String {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: key))
        hmac.update(data: Array("\(messageID).\(timestamp).".utf8))
        hmac.update(data: body)
        return "v1," + Data(hmac.finalize()).base64EncodedString()
    }
}
