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
            if value.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                for byte in value.utf8 {
                    if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                    out.append(byte)
                }
            } else {
                // Most values (ids, numbers, statuses) need no escape: copied in one go.
                out.append(contentsOf: value.utf8)
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

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
                out += [UInt8(ascii: "N"), UInt8(ascii: "U"), UInt8(ascii: "L"), UInt8(ascii: "L")]
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

    /// `{"{\"name\":\"value\",…}",…}`: a `jsonb[]` literal of one JSON object per element,
    /// each written straight into the array's quoted form. The recorder writes one per
    /// attempt (the request headers); building each object as a String and then escaping
    /// every one of its quotes byte by byte cost more than the rest of the flush.
    static func jsonObjectsLiteral(_ objects: [[(key: String, value: String)]]) -> String {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(objects.reduce(2) { total, object in
            object.reduce(total + 6) { $0 + $1.key.utf8.count + $1.value.utf8.count + 10 }
        })
        for (index, object) in objects.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out += Array(#""{"#.utf8)
            for (position, (key, value)) in object.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                appendQuotedJSON(key, to: &out)
                out.append(UInt8(ascii: ":"))
                appendQuotedJSON(value, to: &out)
            }
            out += Array(#"}""#.utf8)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// `text` as a JSON string literal inside a quoted array element: `\"text\"`, with the
    /// JSON escapes' backslashes and quotes escaped again for the array.
    private static func appendQuotedJSON(_ text: String, to out: inout [UInt8]) {
        let quote: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
        if !DeliveryRequest.needsEscaping(text) {
            out += quote
            out.append(contentsOf: text.utf8)
            out += quote
            return
        }
        var json: [UInt8] = []
        DeliveryRequest.appendJSON(text, to: &json)
        for byte in json {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
            out.append(byte)
        }
    }
}
