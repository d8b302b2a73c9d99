import Crypto

/// The `webhook-id` of a batch: `batch_` and 32 hex digits of an HMAC, under the
/// installation's id key, of the events' numbers. The same events give the same id (a
/// receiver can tell a batch it already took), other events another; like event ids it
/// reveals neither the installation nor the event numbers.
public enum BatchID {
    public static let prefix = "batch_"

    public static func make(key: EventIDKey, events: [Int64]) -> String {
        var mac = key.keyedMAC
        mac.update(data: Array("batch".utf8))
        for number in events {
            withUnsafeBytes(of: number.bigEndian) { mac.update(data: Array($0)) }
        }
        let digest = Array(mac.finalize())
        let hex = "0123456789abcdef".utf8.map { $0 }
        var out = [UInt8]()
        out.reserveCapacity(32)
        for byte in digest.prefix(16) {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0xf)])
        }
        return prefix + String(decoding: out, as: UTF8.self)
    }
}
