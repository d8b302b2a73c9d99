import Foundation
import Testing

/// The bodies `standardwebhooks.Webhook(secret).verify` (the reference Python library)
/// accepted, parsed; fails naming what it rejected.
func standardWebhooksVerified(_ requests: [Receiver.Request], secret: String) throws -> [[String: Any]] {
    let encoded = try JSONSerialization.data(withJSONObject: requests.map { ["headers": $0.headers, "body": $0.body] })
    let file = try temporaryFile(String(decoding: encoded, as: UTF8.self), suffix: ".json")
    let script = """
        import json, sys
        from standardwebhooks.webhooks import Webhook
        hook = Webhook(sys.argv[1])
        print(json.dumps([hook.verify(r["body"], r["headers"]) for r in json.load(open(sys.argv[2]))]))
        """
    let result = try runTool(["python3", "-c", script, secret, file])
    try #require(result.status == 0, "standardwebhooks rejected a request (or is missing: run scripts/test): \(result.stderr)")
    return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
}
