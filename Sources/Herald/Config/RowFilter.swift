/// Herald's `filter:` key: a SQL boolean expression over `OLD` and `NEW` that a row change
/// must satisfy to become an event. It is compiled into the capture trigger's `WHEN`
/// clause, so PostgreSQL evaluates it before calling the capture function and a change that
/// does not match costs one expression evaluation, not a plpgsql call and an insert.
///
/// One expression serves every operation: PostgreSQL refuses `OLD` in an INSERT trigger's
/// `WHEN` and `NEW` in a DELETE's, so there the missing row is replaced by a typed null row,
/// `(NULL::"schema"."table")`: `OLD.status IS DISTINCT FROM NEW.status` is true for an
/// insert of any non-null status, as a reader of Hasura's payload (`old: null`) expects.
/// A mapping (`filter: {update: …, delete: …}`) gives each operation its own expression;
/// operations it does not name are not filtered.
public struct RowFilter: Sendable, Equatable {
    /// The expression for every operation, or one per operation.
    public var expressions: [CaptureOperation: RowFilterExpression]

    public init(all expression: RowFilterExpression) {
        expressions = Dictionary(uniqueKeysWithValues: CaptureOperation.allCases.map { ($0, expression) })
    }

    public init(byOperation: [CaptureOperation: RowFilterExpression]) {
        expressions = byOperation
    }

    /// The `WHEN` condition for `operation` on `table`, or nil when the operation is not filtered.
    public func condition(for operation: CaptureOperation, table: TableName) -> String? {
        guard let expression = expressions[operation] else { return nil }
        let nullRow = "(NULL::\(table.quoted))"
        switch operation {
        case .insert: return expression.rendered(old: nullRow, new: "NEW")
        case .update: return expression.rendered(old: "OLD", new: "NEW")
        case .delete: return expression.rendered(old: "OLD", new: nullRow)
        }
    }
}

/// One filter expression, checked for the shape a `WHEN` clause can hold and split at its
/// row references so it can be rendered for each operation (and for backfill, against a
/// table alias) without parsing SQL further.
public struct RowFilterExpression: Sendable, Equatable {
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case empty
        case statementSeparator
        case unbalancedParentheses
        case unterminated(String)
        case subquery

        public var description: String {
            switch self {
            case .empty: "the filter is empty"
            case .statementSeparator: "a filter is one expression; ';' is not allowed outside a string"
            case .unbalancedParentheses: "the filter's parentheses do not balance"
            case .unterminated(let what): "the filter has an unterminated \(what)"
            case .subquery: "a filter cannot contain a subquery (PostgreSQL evaluates it in the trigger's WHEN clause)"
            }
        }
    }

    enum Piece: Sendable, Equatable {
        case text(String)
        case old
        case new
    }

    /// The expression as written.
    public let source: String
    let pieces: [Piece]

    public init(_ source: String) throws(Problem) {
        self.source = source
        pieces = try Self.split(source)
        guard pieces.contains(where: { if case .text(let t) = $0 { !t.allSatisfy(\.isWhitespace) } else { true } })
        else { throw .empty }
    }

    /// The expression with `OLD` and `NEW` replaced by the given SQL.
    public func rendered(old: String, new: String) -> String {
        pieces.map { piece in
            switch piece {
            case .text(let text): text
            case .old: old
            case .new: new
            }
        }.joined()
    }

    /// Splits at unquoted `OLD` / `NEW` row references, skipping string literals, quoted
    /// identifiers and comments, and refuses what cannot be a single `WHEN` expression.
    static func split(_ source: String) throws(Problem) -> [Piece] {
        let scalars = Array(source.unicodeScalars)
        var pieces: [Piece] = []
        var text = String.UnicodeScalarView()
        var depth = 0
        var index = 0
        /// The last significant character before the current token: a name after `.` is a
        /// field (`t.new`), not a row reference.
        var previousSignificant: Unicode.Scalar? = nil

        while index < scalars.count {
            let scalar = scalars[index]
            switch scalar {
            case "'":
                // A string: '' inside is a quote; E'…' also has backslash escapes.
                let escapes = index > 0 && (scalars[index - 1] == "E" || scalars[index - 1] == "e")
                let end = try closing(scalars, from: index, quote: "'", backslashEscapes: escapes, what: "string")
                text.append(contentsOf: scalars[index...end])
                index = end + 1
                previousSignificant = "'"
                continue
            case "\"":
                let end = try closing(scalars, from: index, quote: "\"", backslashEscapes: false, what: "quoted name")
                let name = String(String.UnicodeScalarView(scalars[(index + 1)..<end])).replacingOccurrences(of: "\"\"", with: "\"")
                if previousSignificant != ".", name == "old" || name == "new" {
                    Self.flush(&text, into: &pieces)
                    pieces.append(name == "old" ? .old : .new)
                } else {
                    text.append(contentsOf: scalars[index...end])
                }
                index = end + 1
                previousSignificant = "\""
                continue
            case "$":
                // A dollar-quoted string ($$…$$ or $tag$…$tag$); a lone $ (a parameter) is text.
                if let (end, _) = dollarQuoted(scalars, from: index) {
                    text.append(contentsOf: scalars[index...end])
                    index = end + 1
                    previousSignificant = "'"
                    continue
                }
            case "-" where index + 1 < scalars.count && scalars[index + 1] == "-":
                while index < scalars.count, scalars[index] != "\n" { index += 1 }
                text.append(" ")
                continue
            case "/" where index + 1 < scalars.count && scalars[index + 1] == "*":
                index = try commentEnd(scalars, from: index)
                text.append(" ")
                continue
            case ";":
                throw .statementSeparator
            case "(":
                depth += 1
            case ")":
                depth -= 1
                if depth < 0 { throw .unbalancedParentheses }
            default:
                if isIdentifierStart(scalar) {
                    var end = index
                    while end < scalars.count, isIdentifierPart(scalars[end]) { end += 1 }
                    let word = String(String.UnicodeScalarView(scalars[index..<end])).lowercased()
                    if word == "select" { throw .subquery }
                    if previousSignificant != ".", word == "old" || word == "new" {
                        Self.flush(&text, into: &pieces)
                        pieces.append(word == "old" ? .old : .new)
                    } else {
                        text.append(contentsOf: scalars[index..<end])
                    }
                    index = end
                    previousSignificant = "a"
                    continue
                }
            }
            text.append(scalar)
            if !scalar.properties.isWhitespace { previousSignificant = scalar }
            index += 1
        }
        guard depth == 0 else { throw .unbalancedParentheses }
        Self.flush(&text, into: &pieces)
        return pieces
    }

    private static func flush(_ text: inout String.UnicodeScalarView, into pieces: inout [Piece]) {
        if !text.isEmpty { pieces.append(.text(String(text))) }
        text = String.UnicodeScalarView()
    }

    private static func isIdentifierStart(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "_" || scalar.properties.isAlphabetic
    }

    private static func isIdentifierPart(_ scalar: Unicode.Scalar) -> Bool {
        isIdentifierStart(scalar) || ("0"..."9").contains(scalar) || scalar == "$"
    }

    /// The index of the quote closing the one at `start`.
    private static func closing(
        _ scalars: [Unicode.Scalar], from start: Int, quote: Unicode.Scalar, backslashEscapes: Bool, what: String
    ) throws(Problem) -> Int {
        var index = start + 1
        while index < scalars.count {
            if backslashEscapes, scalars[index] == "\\" {
                index += 2
                continue
            }
            if scalars[index] == quote {
                if index + 1 < scalars.count, scalars[index + 1] == quote {
                    index += 2
                    continue
                }
                return index
            }
            index += 1
        }
        throw .unterminated(what)
    }

    /// The end of the dollar-quoted string starting at `start`, or nil when `$` starts none.
    private static func dollarQuoted(_ scalars: [Unicode.Scalar], from start: Int) -> (Int, String)? {
        var tagEnd = start + 1
        while tagEnd < scalars.count, scalars[tagEnd] != "$" {
            guard isIdentifierPart(scalars[tagEnd]) else { return nil }
            tagEnd += 1
        }
        guard tagEnd < scalars.count else { return nil }
        if tagEnd > start + 1, ("0"..."9").contains(scalars[start + 1]) { return nil }  // $1: a parameter
        let tag = Array(scalars[start...tagEnd])
        var index = tagEnd + 1
        while index + tag.count <= scalars.count {
            if Array(scalars[index..<(index + tag.count)]) == tag {
                return (index + tag.count - 1, String(String.UnicodeScalarView(tag)))
            }
            index += 1
        }
        return nil
    }

    /// The index just past a (nested) block comment starting at `start`.
    private static func commentEnd(_ scalars: [Unicode.Scalar], from start: Int) throws(Problem) -> Int {
        var depth = 0
        var index = start
        while index + 1 < scalars.count {
            if scalars[index] == "/", scalars[index + 1] == "*" {
                depth += 1
                index += 2
            } else if scalars[index] == "*", scalars[index + 1] == "/" {
                depth -= 1
                index += 2
                if depth == 0 { return index }
            } else {
                index += 1
            }
        }
        throw .unterminated("comment")
    }
}
