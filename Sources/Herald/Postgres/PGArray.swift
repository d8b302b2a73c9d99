/// PostgreSQL array literals, so a whole batch travels as one bound parameter per column
/// (`unnest($1::bigint[], $2::text[], …)`) instead of one statement per row.
public enum PGArray {
    /// `{"a","b\"c",NULL}`: every element quoted, so commas, braces and spaces are safe.
    public static func literal(_ values: [String?]) -> String {
        // Works on UTF-8 bytes: the recorder builds these for every flush, and iterating
        // Characters (grapheme clusters) cost more than the rest of the flush.
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(values.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        for (index, value) in values.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            guard let value else {
                out += Array("NULL".utf8)
                continue
            }
            out.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                out.append(byte)
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    public static func literal(_ values: [Int64]) -> String {
        "{" + values.map(String.init).joined(separator: ",") + "}"
    }
}
