import Crypto
import Foundation

/// The per-installation secret payload ids are derived from (`herald.installation.id_key`),
/// and the first event number whose id is made with SipHash rounds
/// (`herald.installation.event_id_v2_from`, fixed when schema 20 was installed): events
/// numbered before it keep the ids their first attempts carried.
public struct EventIDKey: Sendable, Equatable {
    let bytes: [UInt8]
    /// Events numbered from here on get version 2 ids (SipHash rounds); 1 for an
    /// installation that began with schema 20 or later.
    let v2From: Int64
    /// HMAC-SHA256 with the key already absorbed, for version 1 ids. Keying HMAC (hashing the
    /// key into its inner and outer state) was most of a round's cost, so it is done once
    /// here and each round starts from a copy (HMAC is a value type).
    /// Only ever copied, never mutated in place: the copies are independent values.
    nonisolated(unsafe) let keyedMAC: HMAC<SHA256>
    /// The round function's key for version 2 ids, derived from the installation key.
    let sipKey: SipHash24

    public init(bytes: [UInt8], v2From: Int64) {
        self.bytes = bytes
        self.v2From = v2From
        keyedMAC = HMAC<SHA256>(key: SymmetricKey(data: bytes))
        var derive = keyedMAC
        derive.update(data: Array("herald event id v2".utf8))
        sipKey = SipHash24(key: Array(derive.finalize()).prefix(16))
    }

    public static func == (lhs: EventIDKey, rhs: EventIDKey) -> Bool {
        lhs.bytes == rhs.bytes && lhs.v2From == rhs.v2From
    }
}

/// The public id of an event: a version 4 UUID that is a keyed permutation of the event's
/// sequential number. Receivers see what looks like a random UUID — it reveals neither the
/// installation nor the event count, and passes v4 validation — while it stays stable across
/// attempts and redeliveries and can be turned back into the number with the key, so
/// operators can paste what a receiver logged.
///
/// The permutation is a four-round Feistel network over the 122 free bits of a v4 UUID with
/// a keyed pseudorandom function as round function (Luby–Rackoff: a pseudorandom
/// permutation). The number sits in the low 64 bits of the input; the 58 zero bits above it
/// are what decoding checks, so a UUID of another installation (or a typo) decodes to
/// nothing, wrongly only with probability 2⁻⁵⁸.
///
/// Version 2 ids (events numbered from ``EventIDKey/v2From``) use SipHash-2-4 rounds;
/// version 1 ids, of events captured before schema 20, HMAC-SHA256 rounds, which cost the
/// claimer about a third of its CPU per event. An id decodes under the version its number
/// belongs to, so an older id still finds its event and no number has two ids.
public enum EventID {
    private static let halfBits = 61
    private static let halfMask: UInt64 = (1 << 61) - 1

    /// The UUID string for event `number`.
    public static func uuid(key: EventIDKey, number: Int64) -> String {
        format(permute(UInt128(UInt64(bitPattern: number)), key: key, sip: number >= key.v2From))
    }

    /// What to say when `text` finds no event: that it cannot be an id at all (a typo, or
    /// a trigger name where an id belongs) is more use than "no such event".
    public static func notFoundMessage(_ text: String) -> String {
        if (Int64(text) ?? 0) > 0 || UUID(uuidString: text) != nil { return "event \(text): no such event" }
        return "event \(text): not an event id: give the payload id receivers see (a UUID, also their webhook-id) or an event number (a positive integer)"
    }

    /// The event number a UUID made by ``uuid(key:number:)`` stands for, or a plain number as
    /// typed by an operator; nil when the text is neither or belongs to another installation.
    public static func number(from text: String, key: EventIDKey) -> Int64? {
        if let number = Int64(text), number > 0 { return number }
        guard let uuid = UUID(uuidString: text) else { return nil }
        let bytes = withUnsafeBytes(of: uuid.uuid) { Array($0) }
        guard bytes[6] >> 4 == 4, bytes[8] >> 6 == 2 else { return nil }
        let value = payloadBits(bytes)
        if let number = eventNumber(invert(value, key: key, sip: true)), number >= key.v2From { return number }
        if let number = eventNumber(invert(value, key: key, sip: false)), number < key.v2From { return number }
        return nil
    }

    /// The number a decoded permutation input stands for: nil unless the bits above the
    /// low 64 are zero and the number is positive.
    private static func eventNumber(_ plain: UInt128) -> Int64? {
        guard plain >> 64 == 0 else { return nil }
        let number = Int64(bitPattern: UInt64(truncatingIfNeeded: plain))
        return number > 0 ? number : nil
    }

    private static func permute(_ plain: UInt128, key: EventIDKey, sip: Bool) -> UInt128 {
        var left = UInt64(truncatingIfNeeded: plain >> halfBits) & halfMask
        var right = UInt64(truncatingIfNeeded: plain) & halfMask
        for round: UInt8 in 1...4 {
            (left, right) = (right, left ^ roundFunction(key, round, right, sip: sip))
        }
        return UInt128(left) << halfBits | UInt128(right)
    }

    private static func invert(_ value: UInt128, key: EventIDKey, sip: Bool) -> UInt128 {
        var left = UInt64(truncatingIfNeeded: value >> halfBits) & halfMask
        var right = UInt64(truncatingIfNeeded: value) & halfMask
        for round in stride(from: UInt8(4), through: 1, by: -1) {
            (left, right) = (right ^ roundFunction(key, round, left, sip: sip), left)
        }
        return UInt128(left) << halfBits | UInt128(right)
    }

    /// The round's pseudorandom 61 bits of the message (round, then the half big-endian).
    private static func roundFunction(_ key: EventIDKey, _ round: UInt8, _ half: UInt64, sip: Bool) -> UInt64 {
        let bytes = withUnsafeBytes(of: half.bigEndian) { half in
            (round, half[0], half[1], half[2], half[3], half[4], half[5], half[6], half[7])
        }
        if sip {
            return withUnsafeBytes(of: bytes) { key.sipKey.hash($0) } & halfMask
        }
        // One update of the nine bytes: the same MAC as two updates, with half the calls
        // into the generic HMAC.
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
        let top48 = UInt64(truncatingIfNeeded: high >> 12)
        let mid12 = UInt64(truncatingIfNeeded: high) & 0xFFF
        let upper = top48 << 16 | 0x4000 | mid12  // bytes 0–7 of the UUID
        let lower = low | 0x8000_0000_0000_0000  // bytes 8–15: the variant bits 10
        // Lowercase 8-4-4-4-12 hex written directly: Foundation's UUID formats through
        // snprintf and then needs lowercasing, which showed in the claimer's profile.
        return String(unsafeUninitializedCapacity: 36) { out in
            var position = 0
            for nibble in 0..<32 {
                if nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20 {
                    out[position] = UInt8(ascii: "-")
                    position += 1
                }
                let word = nibble < 16 ? upper : lower
                let digit = UInt8(truncatingIfNeeded: word >> (4 * UInt64(15 - nibble % 16))) & 0x0F
                out[position] = digit < 10 ? digit + UInt8(ascii: "0") : digit - 10 + UInt8(ascii: "a")
                position += 1
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
