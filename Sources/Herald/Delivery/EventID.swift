import Foundation

/// The public id of an event: a UUID (RFC 9562 version 8) made of the database's
/// installation id and the event's sequential number. Receivers see a Hasura-shaped UUID that
/// is unique across Herald databases; the log itself keys on the cheap sequential number.
public enum EventID {
    /// The UUID string for event `number` in the installation `installation`.
    public static func uuid(installation: UUID, number: Int64) -> String {
        var bytes = withUnsafeBytes(of: installation.uuid) { Array($0) }
        // Bytes 8…15 carry the event number, big-endian; bits 62…63 of it become the variant.
        let value = UInt64(bitPattern: number)
        for index in 0..<8 {
            bytes[8 + index] = UInt8(truncatingIfNeeded: value >> (8 * (7 - index)))
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x80  // version 8
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 9562 variant
        return UUID(uuid: (
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
            bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
        )).uuidString.lowercased()
    }

    /// The event number inside a UUID made by ``uuid(installation:number:)``, or a plain
    /// number as typed by an operator; nil when the text is neither or belongs to another
    /// installation.
    public static func number(from text: String, installation: UUID) -> Int64? {
        if let number = Int64(text), number > 0 { return number }
        guard let uuid = UUID(uuidString: text) else { return nil }
        let bytes = withUnsafeBytes(of: uuid.uuid) { Array($0) }
        var value: UInt64 = 0
        for index in 0..<8 { value = value << 8 | UInt64(bytes[8 + index]) }
        value &= 0x3FFF_FFFF_FFFF_FFFF
        let number = Int64(bitPattern: value)
        return self.uuid(installation: installation, number: number) == text.lowercased() ? number : nil
    }
}
