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
            guard var value else {
                // Not `Array("NULL".utf8)`: that allocated once per NULL, five per attempt row.
                out.append(contentsOf: nullBytes)
                continue
            }
            out.append(UInt8(ascii: "\""))
            value.withUTF8 { bytes in
                if bytes.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                    for byte in bytes {
                        if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                        out.append(byte)
                    }
                } else {
                    // Most values (ids, numbers, statuses) need no escape: copied in one go.
                    out.append(contentsOf: bytes)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    private static let nullBytes: [UInt8] = Array("NULL".utf8)

    public static func literal(_ values: [Int64]) -> String {
        integers(values.count) { values[$0] }
    }

    /// `{1,NULL,-3}`: integers written as digits straight into the literal, with no String
    /// per element (a 16-digit lease token is one heap String each otherwise).
    public static func literal(_ values: [Int64?]) -> String {
        integers(values.count) { values[$0] }
    }

    private static func integers(_ count: Int, _ element: (Int) -> Int64?) -> String {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(2 + count * 21)
        var digits = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0),
                      UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0))
        for index in 0..<count {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            guard let value = element(index) else {
                out.append(contentsOf: nullBytes)
                continue
            }
            if value < 0 { out.append(UInt8(ascii: "-")) }
            // The magnitude as unsigned, so Int64.min has one too.
            var magnitude = value.magnitude
            withUnsafeMutableBytes(of: &digits) { buffer in
                var position = buffer.count
                repeat {
                    position -= 1
                    buffer[position] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                    magnitude /= 10
                } while magnitude > 0
                out.append(contentsOf: buffer[position...])
            }
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// `{"{\"name\":\"value\",…}",…}`: a `jsonb[]` literal of one JSON object per list, the
    /// headers as recorded (``DeliveryRequest/recordedValue(_:)``), each written straight into
    /// the array's quoted form. The recorder writes one per attempt: building each object as
    /// a String and then escaping every one of its quotes byte by byte cost more than the
    /// rest of the flush, and so did a pair list per attempt and an array per quote.
    static func headerObjectsLiteral(_ lists: [[DeliveryRequest.Header]]) -> String {
        var capacity = 2
        for list in lists {
            capacity += 6
            for header in list { capacity += header.name.utf8.count + header.value.utf8.count + 10 }
        }
        var out: [UInt8] = []
        out.reserveCapacity(capacity)
        func raw(_ text: StaticString) {
            out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        }
        raw("{")
        for (index, list) in lists.enumerated() {
            if index > 0 { raw(",") }
            raw(#""{"#)
            for (position, header) in list.enumerated() {
                if position > 0 { raw(",") }
                appendQuotedJSON(header.name, to: &out)
                raw(":")
                appendQuotedJSON(DeliveryRequest.recordedValue(header), to: &out)
            }
            raw(#"}""#)
        }
        raw("}")
        return String(decoding: out, as: UTF8.self)
    }

    /// `text` as a JSON string literal inside a quoted array element: `\"text\"`, with the
    /// JSON escapes' backslashes and quotes escaped again for the array.
    private static func appendQuotedJSON(_ text: String, to out: inout [UInt8]) {
        let copied = DeliveryRequest.withPlainUTF8(text) { bytes in
            out.append(UInt8(ascii: "\\"))
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: bytes)
            out.append(UInt8(ascii: "\\"))
            out.append(UInt8(ascii: "\""))
        }
        if copied { return }
        var json: [UInt8] = []
        DeliveryRequest.appendJSON(text, to: &json)
        for byte in json {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
            out.append(byte)
        }
    }
}
