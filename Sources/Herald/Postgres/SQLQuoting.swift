/// Quoting for the few places where a name must be spliced into SQL text (DDL cannot take
/// identifiers as parameters). Values always travel as bound parameters instead.
public enum SQLQuoting {
    /// A double-quoted identifier, as PostgreSQL's `quote_ident`/`format('%I')` would write
    /// it, except that it always quotes: "Order Items", "a""b", "users".
    public static func identifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `"schema"."table"`.
    public static func qualified(schema: String, name: String) -> String {
        identifier(schema) + "." + identifier(name)
    }

    /// A single-quoted string literal for DDL arguments such as trigger arguments and
    /// comments. Standard-conforming strings are on by default since PostgreSQL 9.1, so
    /// doubling the quote is the whole job; backslashes are literal.
    public static func literal(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
    }
}

/// Bound parameters collected while a statement is assembled: each value added is sent
/// separately and its placeholder (`$n`) goes into the SQL text.
struct SQLParameters {
    private(set) var values: [String?]

    init(_ values: [String?] = []) { self.values = values }

    mutating func add(_ value: String?) -> String {
        values.append(value)
        return "$\(values.count)"
    }
}
