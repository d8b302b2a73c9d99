import Crypto
import Foundation

/// The per-installation secret payload ids are derived from (`herald.installation.id_key`).
public struct EventIDKey: Sendable, Equatable {
    let bytes: [UInt8]
    /// HMAC-SHA256 with the key already absorbed. Every id takes four MACs; keying HMAC
    /// (hashing the key into its inner and outer state) was most of their cost, so it is done
    /// once here and each round starts from a copy (HMAC is a value type).
    /// Only ever copied, never mutated in place: the copies are independent values.
    nonisolated(unsafe) let keyedMAC: HMAC<SHA256>

    public init(bytes: [UInt8]) {
        self.bytes = bytes
        keyedMAC = HMAC<SHA256>(key: SymmetricKey(data: bytes))
    }

    public static func == (lhs: EventIDKey, rhs: EventIDKey) -> Bool { lhs.bytes == rhs.bytes }
}

/// The public id of an event: a version 4 UUID that is a keyed permutation of the event's
/// sequential number. Receivers see what looks like a random UUID — it reveals neither the
/// installation nor the event count, and passes v4 validation — while it stays stable across
/// attempts and redeliveries and can be turned back into the number with the key, so
/// operators can paste what a receiver logged.
///
/// The permutation is a four-round Feistel network over the 122 free bits of a v4 UUID with
/// HMAC-SHA256 as round function (Luby–Rackoff: a pseudorandom permutation). The number sits
/// in the low 64 bits of the input; the 58 zero bits above it are what decoding checks, so a
/// UUID of another installation (or a typo) decodes to nothing, wrongly only with
/// probability 2⁻⁵⁸.
public enum EventID {
    private static let halfBits = 61
    private static let halfMask: UInt64 = (1 << 61) - 1
    private static let rounds: [UInt8] = [1, 2, 3, 4]

    /// The UUID string for event `number`.
    public static func uuid(key: EventIDKey, number: Int64) -> String {
        let plain = UInt128(UInt64(bitPattern: number))
        var left = UInt64(truncatingIfNeeded: plain >> halfBits) & halfMask
        var right = UInt64(truncatingIfNeeded: plain) & halfMask
        for round in rounds {
            (left, right) = (right, left ^ roundFunction(key, round, right))
        }
        return format(UInt128(left) << halfBits | UInt128(right))
    }

    /// The event number a UUID made by ``uuid(key:number:)`` stands for, or a plain number as
    /// typed by an operator; nil when the text is neither or belongs to another installation.
    /// What to say when `text` finds no event: that it cannot be an id at all (a typo, or
    /// a trigger name where an id belongs) is more use than "no such event".
    public static func notFoundMessage(_ text: String) -> String {
        if (Int64(text) ?? 0) > 0 || UUID(uuidString: text) != nil { return "event \(text): no such event" }
        return "event \(text): not an event id: give the payload id receivers see (a UUID, also their webhook-id) or an event number (a positive integer)"
    }

    public static func number(from text: String, key: EventIDKey) -> Int64? {
        if let number = Int64(text), number > 0 { return number }
        guard let uuid = UUID(uuidString: text) else { return nil }
        let bytes = withUnsafeBytes(of: uuid.uuid) { Array($0) }
        guard bytes[6] >> 4 == 4, bytes[8] >> 6 == 2 else { return nil }
        let value = payloadBits(bytes)
        var left = UInt64(truncatingIfNeeded: value >> halfBits) & halfMask
        var right = UInt64(truncatingIfNeeded: value) & halfMask
        for round in rounds.reversed() {
            (left, right) = (right ^ roundFunction(key, round, left), left)
        }
        let plain = UInt128(left) << halfBits | UInt128(right)
        guard plain >> 64 == 0 else { return nil }
        let number = Int64(bitPattern: UInt64(truncatingIfNeeded: plain))
        return number > 0 ? number : nil
    }

    private static func roundFunction(_ key: EventIDKey, _ round: UInt8, _ half: UInt64) -> UInt64 {
        // One update of the nine message bytes (round, then the half big-endian): the same MAC
        // as two updates, with half the calls into the generic HMAC.
        let bytes = withUnsafeBytes(of: half.bigEndian) { half in
            (round, half[0], half[1], half[2], half[3], half[4], half[5], half[6], half[7])
        }
        var hmac = key.keyedMAC
        withUnsafeBytes(of: bytes) { hmac.update(data: $0) }
        let mac = hmac.finalize()
        return mac.withUnsafeBytes { bytes in
            bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        } & halfMask
    }

    /// Spreads 122 bits over a UUID around the version nibble (4) and the variant bits (10).
    private static func format(_ value: UInt128) -> String {
        // Bit layout, most significant first: 48 | version 4 | 12 | variant 2 | 62.
        let high = value >> 62  // 60 bits: 48 + 12
        let low = UInt64(truncatingIfNeeded: value) & ((1 << 62) - 1)
        var bytes = [UInt8](repeating: 0, count: 16)
        let top48 = UInt64(truncatingIfNeeded: high >> 12)
        for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: top48 >> (8 * (5 - index))) }
        let mid12 = UInt64(truncatingIfNeeded: high) & 0xFFF
        bytes[6] = 0x40 | UInt8(truncatingIfNeeded: mid12 >> 8)
        bytes[7] = UInt8(truncatingIfNeeded: mid12)
        for index in 0..<8 { bytes[8 + index] = UInt8(truncatingIfNeeded: low >> (8 * (7 - index))) }
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        // Lowercase 8-4-4-4-12 hex written directly: Foundation's UUID formats through
        // snprintf and then needs lowercasing, which showed in the claimer's profile.
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: 36) { out in
            var position = 0
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    out[position] = UInt8(ascii: "-")
                    position += 1
                }
                out[position] = digits[Int(byte >> 4)]
                out[position + 1] = digits[Int(byte & 0x0F)]
                position += 2
            }
            return position
        }
    }

    /// The inverse of ``format(_:)``.
    private static func payloadBits(_ bytes: [UInt8]) -> UInt128 {
        var top48: UInt64 = 0
        for index in 0..<6 { top48 = top48 << 8 | UInt64(bytes[index]) }
        let mid12 = UInt64(bytes[6] & 0x0F) << 8 | UInt64(bytes[7])
        var low: UInt64 = 0
        for index in 0..<8 { low = low << 8 | UInt64(bytes[8 + index]) }
        low &= (1 << 62) - 1
        return (UInt128(top48) << 12 | UInt128(mid12)) << 62 | UInt128(low)
    }
}
