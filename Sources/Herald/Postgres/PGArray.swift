/// PostgreSQL array literals, so a whole batch travels as one bound parameter per column
/// (`unnest($1::bigint[], $2::text[], …)`) instead of one statement per row.
public enum PGArray {
    /// `{"a","b\"c",NULL}`: every element quoted, so commas, braces and spaces are safe.
    public static func literal(_ values: [String?]) -> String {
        var out = "{"
        for (index, value) in values.enumerated() {
            if index > 0 { out += "," }
            guard let value else {
                out += "NULL"
                continue
            }
            out += "\""
            for character in value {
                if character == "\"" || character == "\\" { out += "\\" }
                out.append(character)
            }
            out += "\""
        }
        return out + "}"
    }

    public static func literal(_ values: [Int64]) -> String {
        "{" + values.map(String.init).joined(separator: ",") + "}"
    }
}
