import Foundation

/// The pull API's messages and their rules, without I/O: request bodies, ack ids, how a
/// receive's `max` is shared among a consumer's triggers, and the response body.
enum ConsumerProtocol {
    static let maxReceive = 1000
    static let maxWaitMilliseconds = 30_000

    /// `POST /v1/consumers/{name}/receive` body: `{"max": 10, "wait_ms": 0}`, both optional.
    struct Receive: Equatable {
        var max = 10
        var waitMilliseconds = 0
    }

    /// `ack` / `nack` body: `{"ack_ids": [...], "retry_after": seconds}` (`retry_after`: nack only).
    struct Answer: Equatable {
        var ackIDs: [String]
        var retryAfterSeconds: Double?
    }

    struct BadRequest: Error, Equatable, CustomStringConvertible {
        var description: String
    }

    static func parseReceive(_ body: [UInt8]) throws(BadRequest) -> Receive {
        var receive = Receive()
        guard !body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) else { return receive }
        let object = try object(body)
        try rejectUnknown(object, allowed: ["max", "wait_ms"])
        if let value = object["max"] {
            guard let max = integer(value), (1...maxReceive).contains(max) else {
                throw BadRequest(description: "max must be an integer from 1 to \(maxReceive)")
            }
            receive.max = max
        }
        if let value = object["wait_ms"] {
            guard let wait = integer(value), (0...maxWaitMilliseconds).contains(wait) else {
                throw BadRequest(description: "wait_ms must be an integer from 0 to \(maxWaitMilliseconds)")
            }
            receive.waitMilliseconds = wait
        }
        return receive
    }

    static func parseAnswer(_ body: [UInt8], allowsRetryAfter: Bool) throws(BadRequest) -> Answer {
        let object = try object(body)
        try rejectUnknown(object, allowed: allowsRetryAfter ? ["ack_ids", "retry_after"] : ["ack_ids"])
        guard let ids = object["ack_ids"] as? [Any], ids.count <= maxReceive,
            let strings = ids as? [String], !strings.isEmpty
        else { throw BadRequest(description: "ack_ids must be a list of 1 to \(maxReceive) ack ids (strings)") }
        var answer = Answer(ackIDs: strings)
        if let value = object["retry_after"] {
            guard let seconds = number(value)?.doubleValue, seconds >= 0, seconds <= 86_400 * 7 else { throw BadRequest(description: "retry_after must be a number of seconds from 0 to 604800") }
            answer.retryAfterSeconds = seconds
        }
        return answer
    }

    private static func object(_ body: [UInt8]) throws(BadRequest) -> [String: Any] {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw BadRequest(description: "the body must be a JSON object")
        }
        return object
    }

    private static func rejectUnknown(_ object: [String: Any], allowed: Set<String>) throws(BadRequest) {
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw BadRequest(description: "unknown key '\(unknown)' (expected \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    private static func integer(_ value: Any) -> Int? {
        guard let number = number(value), number.doubleValue == number.doubleValue.rounded() else { return nil }
        return number.intValue
    }

    /// A JSON number; nil for anything else, `true` and `false` included (Foundation hands
    /// those over as NSNumbers too, and `is Bool` holds for the numbers 0 and 1 as well).
    private static func number(_ value: Any) -> NSNumber? {
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
        return number
    }

    /// An ack id: the event's public id and the receive's lease token. It answers that
    /// receive only: once the lease lapsed and the event was received again, the old id is stale.
    static func ackID(publicID: String, leaseToken: Int64) -> String { "\(publicID).\(leaseToken)" }

    /// The public id and lease token of an ack id; nil when it is not one.
    static func parseAckID(_ text: String) -> (publicID: String, leaseToken: Int64)? {
        guard let dot = text.lastIndex(of: "."), let lease = Int64(text[text.index(after: dot)...]) else { return nil }
        let id = String(text[..<dot])
        return id.isEmpty ? nil : (id, lease)
    }

    /// `max` shared among the consumer's triggers: equal parts, the remainder to the first,
    /// every trigger at least one.
    static func limits(max: Int, triggers: [String]) -> [String: Int] {
        guard !triggers.isEmpty else { return [:] }
        let part = max / triggers.count
        let rest = max % triggers.count
        var limits: [String: Int] = [:]
        for (index, trigger) in triggers.sorted().enumerated() {
            limits[trigger] = Swift.max(1, part + (index < rest ? 1 : 0))
        }
        return limits
    }

    /// One received event in the response: `{"ack_id", "id", "trigger", "attempt", "payload"}`,
    /// where `payload` is exactly what a webhook would be sent.
    static func eventJSON(ackID: String, publicID: String, trigger: String, attempt: Int, payload: String) -> String {
        "{\"ack_id\":\(DeliveryRequest.json(ackID)),\"id\":\(DeliveryRequest.json(publicID)),"
            + "\"trigger\":\(DeliveryRequest.json(trigger)),\"attempt\":\(attempt),\"payload\":\(payload)}"
    }
}
