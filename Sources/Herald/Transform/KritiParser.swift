/// Kriti's grammar as a recursive-descent parser working on the template's bytes.
///
/// Kriti lexes with modes (outside `{{ }}`, inside, inside a string); here the parser asks
/// for the token its context expects, which gives the same language: `{{` opens a
/// template part wherever a value may start, and `}}` closes it unless an object inside
/// it is still open. Precedence, loosest first: `c ? a : b`, `??`, `||`, `&&`, the
/// comparisons and `in` (not chainable), function application (`f x`, `f(x)`; `not`
/// takes everything up to a `?`, a comma or a closing bracket), and lookups (`.a`,
/// `['a']`, `[0]`, `?.a`, `?[0]`).
///
/// kriti-lang's grammars have ranked these operators differently over time; its latest
/// takes a single operand on each side of a binary operator, so mixing operators needs
/// parentheses there. Every template that grammar accepts means the same here; the
/// ranking above only gives meaning to unparenthesized mixes it would reject.
struct KritiParser {
    let source: [UInt8]
    var position = 0

    /// Nesting limit, so that a hostile template cannot exhaust the stack.
    static let maximumDepth = 256
    var depth = 0

    static let keywords: Set<String> = ["if", "elif", "else", "end", "range", "in", "null", "true", "false"]

    init(source: [UInt8]) { self.source = source }

    static func parse(_ source: [UInt8]) throws(KritiError) -> KritiNode {
        var parser = KritiParser(source: source)
        parser.skipTrivia()
        let node = try parser.parseExpression()
        parser.skipTrivia()
        guard parser.isAtEnd else { throw parser.unexpected() }
        return node
    }

    // MARK: Characters

    var isAtEnd: Bool { position >= source.count }

    func peek(_ offset: Int = 0) -> UInt8? {
        let index = position + offset
        return index < source.count ? source[index] : nil
    }

    func startsWith(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard position + count <= source.count else { return false }
        let expected = UnsafeBufferPointer(start: text.utf8Start, count: count)
        for offset in 0..<count where source[position + offset] != expected[offset] { return false }
        return true
    }

    /// Whitespace and `#` comments, which run to the end of the line.
    mutating func skipTrivia() {
        while let byte = peek() {
            switch byte {
            case 0x20, 0x0A, 0x0D, 0x09:
                position += 1
            case UInt8(ascii: "#"):
                while let next = peek(), next != 0x0A { position += 1 }
            default:
                return
            }
        }
    }

    static func isIdentifierStart(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }

    static func isIdentifierContinue(_ byte: UInt8) -> Bool {
        isIdentifierStart(byte) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "$")
    }

    /// The identifier at `position` (`$`, `$name`, `name`, with `-`, `_`, digits and `$`
    /// after the first letter, as Kriti's lexer allows), without consuming it.
    func identifierLength() -> Int {
        var length = 0
        if peek() == UInt8(ascii: "$") {
            length = 1
            guard let next = peek(1), KritiParser.isIdentifierStart(next) else { return 1 }
        } else {
            guard let first = peek(), KritiParser.isIdentifierStart(first) else { return 0 }
        }
        length += 1
        while let byte = peek(length), KritiParser.isIdentifierContinue(byte) { length += 1 }
        return length
    }

    func identifier(at start: Int, length: Int) -> String {
        String(decoding: source[start..<(start + length)], as: UTF8.self)
    }

    /// The keyword at `position`, if the next identifier is exactly `word`.
    func atKeyword(_ word: String) -> Bool {
        let length = identifierLength()
        guard length == word.utf8.count else { return false }
        return source[position..<(position + length)].elementsEqual(word.utf8)
    }

    // MARK: Errors

    func location(_ offset: Int) -> SourceLocation { SourceLocation(source: source, offset: offset) }

    func error(_ code: KritiError.Code, _ message: String, from start: Int, to end: Int) -> KritiError {
        KritiError(
            code: code, message: message,
            range: KritiError.SourceRange(start: location(start), end: location(end)))
    }

    /// "Unexpected token" for whatever starts at `position`, in Kriti's words.
    func unexpected() -> KritiError {
        guard let byte = peek() else {
            return error(.parseError, "Unexpected end of input.", from: position, to: position)
        }
        var length = identifierLength()
        if length == 0 {
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") || byte == UInt8(ascii: "-") {
                length = 1
                while let next = peek(length), (next >= UInt8(ascii: "0") && next <= UInt8(ascii: "9")) || next == UInt8(ascii: ".") {
                    length += 1
                }
            } else {
                let pairs: [StaticString] = ["{{", "}}", "==", "!=", ">=", "<=", "&&", "||", "??", ":="]
                length = pairs.contains(where: startsWith) ? 2 : 1
                if byte >= 0x80 {
                    while let next = peek(length), next & 0xC0 == 0x80 { length += 1 }
                }
            }
        }
        let text = String(decoding: source[position..<min(position + length, source.count)], as: UTF8.self)
        if KritiParser.startsToken(byte) || length > 1 {
            return error(.parseError, "Unexpected token '\(text)'.", from: position, to: position + length)
        }
        return error(.lexError, "Invalid Lexeme: '\(text)'", from: position, to: position + length)
    }

    /// Whether a byte can begin some Kriti token; anything else is a lexical error.
    static func startsToken(_ byte: UInt8) -> Bool {
        if isIdentifierStart(byte) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) { return true }
        return Array("$\"'{}[]().,:?=!<>&|_-".utf8).contains(byte)
    }

    mutating func expect(_ text: StaticString) throws(KritiError) {
        skipTrivia()
        guard startsWith(text) else { throw unexpected() }
        position += text.utf8CodeUnitCount
    }

    mutating func expectKeyword(_ word: String) throws(KritiError) {
        skipTrivia()
        guard atKeyword(word) else { throw unexpected() }
        position += word.utf8.count
    }

    mutating func enter() throws(KritiError) {
        depth += 1
        guard depth <= KritiParser.maximumDepth else {
            throw error(.parseError, "Template nested too deeply.", from: position, to: position)
        }
    }

    // MARK: Expressions

    mutating func parseExpression() throws(KritiError) -> KritiNode {
        try enter()
        defer { depth -= 1 }
        let condition = try parseDefaulting()
        skipTrivia()
        // `?` followed by `.` or `[` is optional chaining, handled with the lookups.
        guard peek() == UInt8(ascii: "?"), peek(1) != UInt8(ascii: "?") else { return condition }
        position += 1
        skipTrivia()
        let whenTrue = try parseExpression()
        try expect(":")
        skipTrivia()
        let whenFalse = try parseExpression()
        return .ternary(condition, whenTrue, whenFalse, condition.span + whenFalse.span)
    }

    /// The left-associative operators, loosest first; each level's operands are the next
    /// level's expressions, and the comparisons come after the last.
    static let binaryLevels: [(symbol: StaticString, make: @Sendable (KritiNode, KritiNode) -> KritiNode)] = [
        ("??", { .defaulting($0, $1, $0.span + $1.span) }),
        ("||", { .binary(.or, $0, $1, $0.span + $1.span) }),
        ("&&", { .binary(.and, $0, $1, $0.span + $1.span) }),
    ]

    mutating func parseDefaulting() throws(KritiError) -> KritiNode {
        try parseBinary(level: 0)
    }

    mutating func parseBinary(level: Int) throws(KritiError) -> KritiNode {
        guard level < KritiParser.binaryLevels.count else { return try parseComparison() }
        let (symbol, make) = KritiParser.binaryLevels[level]
        var left = try parseBinary(level: level + 1)
        while true {
            skipTrivia()
            guard startsWith(symbol) else { return left }
            position += symbol.utf8CodeUnitCount
            skipTrivia()
            left = make(left, try parseBinary(level: level + 1))
        }
    }

    /// Two-character operators first, so that `>=` is not read as `>`.
    static let comparisons: [(symbol: StaticString, op: KritiBinaryOperator)] = [
        ("==", .equal), ("!=", .notEqual), (">=", .greaterOrEqual), ("<=", .lessOrEqual), (">", .greater),
        ("<", .less),
    ]

    mutating func parseComparison() throws(KritiError) -> KritiNode {
        let left = try parseApplication()
        skipTrivia()
        let op: KritiBinaryOperator
        if let match = KritiParser.comparisons.first(where: { startsWith($0.symbol) }) {
            op = match.op
            position += match.symbol.utf8CodeUnitCount
        } else if atKeyword("in") {
            op = .in
            position += 2
        } else {
            return left
        }
        skipTrivia()
        let right = try parseApplication()
        return .binary(op, left, right, left.span + right.span)
    }

    /// `name argument`: a name that is not a variable (no `$`, not a range binder written
    /// with an index right after it) followed by something that starts a value.
    mutating func parseApplication() throws(KritiError) -> KritiNode {
        let length = identifierLength()
        if length > 0, peek() != UInt8(ascii: "$") {
            let start = position
            let name = identifier(at: start, length: length)
            if !KritiParser.keywords.contains(name) {
                let afterName = start + length
                position = afterName
                skipTrivia()
                let adjacentBracket = position == afterName && peek() == UInt8(ascii: "[")
                if !adjacentBracket, startsValue() {
                    // kriti-lang's grammar gives `not` a whole expression: `not a == b`
                    // negates the comparison.
                    let argument = name == "not" ? try parseDefaulting() : try parseApplication()
                    return .call(name, argument, KritiSpan(start: start, end: position))
                }
                position = start
            }
        }
        return try parsePostfix()
    }

    /// Whether the text at `position` begins a value (and not the `{{ else }}`, `{{ elif }}`
    /// or `{{ end }}` that closes a block).
    func startsValue() -> Bool {
        guard let byte = peek() else { return false }
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "["), UInt8(ascii: "("), UInt8(ascii: "$"):
            return true
        case UInt8(ascii: "-"):
            if let next = peek(1) { return next >= UInt8(ascii: "0") && next <= UInt8(ascii: "9") }
            return false
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "{"):
            guard peek(1) == UInt8(ascii: "{") else { return true }
            var probe = self
            probe.position += 2
            probe.skipTrivia()
            return !(probe.atKeyword("else") || probe.atKeyword("elif") || probe.atKeyword("end"))
        default:
            guard KritiParser.isIdentifierStart(byte) else { return false }
            return !(atKeyword("in") || atKeyword("else") || atKeyword("elif") || atKeyword("end"))
        }
    }

    mutating func parsePostfix() throws(KritiError) -> KritiNode {
        var node = try parsePrimary()
        while true {
            let beforeTrivia = position
            skipTrivia()
            guard let byte = peek() else { break }
            if byte == UInt8(ascii: "."), peek(1).map(KritiParser.isIdentifierStart) == true || peek(1) == UInt8(ascii: "$") {
                let key = try parseDotField()
                node = .field(node, key, KritiSpan(start: node.span.start, end: position))
            } else if byte == UInt8(ascii: "[") {
                let key = try parseBracketField()
                node = .field(node, key, KritiSpan(start: node.span.start, end: position))
            } else if byte == UInt8(ascii: "?"), peek(1) == UInt8(ascii: ".") || peek(1) == UInt8(ascii: "[") {
                position += 1
                var keys: [KritiFieldKey] = []
                while true {
                    let mark = position
                    skipTrivia()
                    if peek() == UInt8(ascii: "."), peek(1).map(KritiParser.isIdentifierStart) == true || peek(1) == UInt8(ascii: "$") {
                        keys.append(try parseDotField())
                    } else if peek() == UInt8(ascii: "."), peek(1) == UInt8(ascii: "[") {
                        // `?.[0]` and `?.['key']` are written in Kriti's own tests.
                        position += 1
                        keys.append(try parseBracketField())
                    } else if peek() == UInt8(ascii: "[") {
                        keys.append(try parseBracketField())
                    } else {
                        position = mark
                        break
                    }
                }
                node = .optionalChain(node, keys, KritiSpan(start: node.span.start, end: position))
            } else {
                position = beforeTrivia
                break
            }
        }
        return node
    }

    mutating func parseDotField() throws(KritiError) -> KritiFieldKey {
        position += 1
        let length = identifierLength()
        guard length > 0 else { throw unexpected() }
        let name = identifier(at: position, length: length)
        position += length
        return .name(name)
    }

    mutating func parseBracketField() throws(KritiError) -> KritiFieldKey {
        position += 1
        skipTrivia()
        let key = try parseExpression()
        try expect("]")
        if case .literal(.string(let name), _) = key { return .name(name) }
        return .expression(key)
    }

    mutating func parsePrimary() throws(KritiError) -> KritiNode {
        try enter()
        defer { depth -= 1 }
        skipTrivia()
        let start = position
        guard let byte = peek() else { throw unexpected() }
        switch byte {
        case UInt8(ascii: "\""):
            return try parseString(quote: UInt8(ascii: "\""))
        case UInt8(ascii: "'"):
            return try parseString(quote: UInt8(ascii: "'"))
        case UInt8(ascii: "["):
            return try parseArray()
        case UInt8(ascii: "{"):
            if peek(1) == UInt8(ascii: "{") { return try parseBlock() }
            return try parseObject()
        case UInt8(ascii: "("):
            position += 1
            skipTrivia()
            let inner = try parseExpression()
            try expect(")")
            return inner
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            var cursor = position
            let number = source.withUnsafeBufferPointer { bytes in JSONReader.scanNumber(bytes, at: &cursor) }
            guard let number else { throw unexpected() }
            position = cursor
            return .literal(.number(number), KritiSpan(start: start, end: position))
        default:
            let length = identifierLength()
            guard length > 0 else { throw unexpected() }
            let name = identifier(at: start, length: length)
            let span = KritiSpan(start: start, end: start + length)
            switch name {
            case "true":
                position += length
                return .literal(.bool(true), span)
            case "false":
                position += length
                return .literal(.bool(false), span)
            case "null":
                position += length
                return .literal(.null, span)
            default:
                if KritiParser.keywords.contains(name) { throw unexpected() }
                position += length
                return .variable(name, span)
            }
        }
    }

    mutating func parseArray() throws(KritiError) -> KritiNode {
        let start = position
        position += 1
        var elements: [KritiNode] = []
        skipTrivia()
        if peek() == UInt8(ascii: "]") {
            position += 1
            return .literal(.array([]), KritiSpan(start: start, end: position))
        }
        while true {
            skipTrivia()
            elements.append(try parseExpression())
            skipTrivia()
            if peek() == UInt8(ascii: ",") {
                position += 1
            } else if peek() == UInt8(ascii: "]") {
                position += 1
                break
            } else {
                throw unexpected()
            }
        }
        let span = KritiSpan(start: start, end: position)
        let constants = elements.compactMap(\.constantValue)
        if constants.count == elements.count { return .literal(.array(constants), span) }
        return .array(elements, span)
    }

    mutating func parseObject() throws(KritiError) -> KritiNode {
        let start = position
        position += 1
        var keys: [String] = []
        var values: [KritiNode] = []
        skipTrivia()
        if peek() == UInt8(ascii: "}") {
            position += 1
            return .literal(.object(KritiObject()), KritiSpan(start: start, end: position))
        }
        while true {
            skipTrivia()
            // Keys are plain string literals in Kriti's grammar.
            guard peek() == UInt8(ascii: "\"") else { throw unexpected() }
            let keyNode = try parseString(quote: UInt8(ascii: "\""))
            guard case .literal(.string(let key), _) = keyNode else {
                throw error(.parseError, "Unexpected token '{{'.", from: keyNode.span.start, to: keyNode.span.end)
            }
            try expect(":")
            skipTrivia()
            let value = try parseExpression()
            // A repeated key keeps its first place and its last value, as a JSON object does.
            if let existing = keys.firstIndex(of: key) {
                values[existing] = value
            } else {
                keys.append(key)
                values.append(value)
            }
            skipTrivia()
            if peek() == UInt8(ascii: ",") {
                position += 1
            } else if peek() == UInt8(ascii: "}") {
                position += 1
                break
            } else {
                throw unexpected()
            }
        }
        let span = KritiSpan(start: start, end: position)
        let constants = values.compactMap(\.constantValue)
        if constants.count == values.count {
            var object = KritiObject(minimumCapacity: keys.count)
            for (key, value) in zip(keys, constants) { object[key] = value }
            return .literal(.object(object), span)
        }
        return .object(keys: keys, values: values, span)
    }

    /// A string literal; `{{ }}` inside it makes it a template. Backslash escapes are
    /// JSON's (plus `\'` in single-quoted strings); any other backslash is kept as text.
    mutating func parseString(quote: UInt8) throws(KritiError) -> KritiNode {
        let start = position
        position += 1
        var parts: [KritiNode] = []
        var literal: [UInt8] = []
        var literalStart = position
        func flush(_ parts: inout [KritiNode], _ literal: inout [UInt8], end: Int) {
            guard !literal.isEmpty else { return }
            parts.append(.literal(.string(String(decoding: literal, as: UTF8.self)), KritiSpan(start: literalStart, end: end)))
            literal.removeAll(keepingCapacity: true)
        }
        while true {
            guard let byte = peek() else {
                throw error(.parseError, "Unexpected end of input.", from: start, to: position)
            }
            if byte == quote {
                flush(&parts, &literal, end: position)
                position += 1
                break
            }
            if byte == UInt8(ascii: "\\") {
                let escapeStart = position
                position += 1
                if quote == UInt8(ascii: "'"), peek() == UInt8(ascii: "'") {
                    literal.append(UInt8(ascii: "'"))
                    position += 1
                    continue
                }
                var cursor = position
                let scalar = source.withUnsafeBufferPointer { bytes in JSONReader.readEscape(bytes, at: &cursor) }
                position = cursor
                guard let scalar else {
                    // Kriti's lexer passes a backslash it does not know through as text.
                    literal.append(UInt8(ascii: "\\"))
                    position = escapeStart + 1
                    continue
                }
                literal.append(contentsOf: String(Character(scalar)).utf8)
                continue
            }
            if byte == UInt8(ascii: "{"), peek(1) == UInt8(ascii: "{") {
                flush(&parts, &literal, end: position)
                position += 2
                skipTrivia()
                parts.append(try parseExpression())
                try expect("}}")
                literalStart = position
                continue
            }
            literal.append(byte)
            position += 1
        }
        let span = KritiSpan(start: start, end: position)
        if parts.isEmpty { return .literal(.string(""), span) }
        if parts.count == 1, case .literal(.string, _) = parts[0] {
            return .literal(parts[0].constantValue!, span)
        }
        return .stringTemplate(parts, span)
    }

    /// What follows `{{`: an `if` or `range` block, or one expression and `}}`.
    mutating func parseBlock() throws(KritiError) -> KritiNode {
        let start = position
        position += 2
        skipTrivia()
        if atKeyword("if") {
            position += 2
            return try parseConditional(start: start)
        }
        if atKeyword("range") {
            position += 5
            return try parseRange(start: start)
        }
        let inner = try parseExpression()
        try expect("}}")
        return inner
    }

    mutating func parseConditional(start: Int) throws(KritiError) -> KritiNode {
        var conditions: [KritiNode] = []
        var branches: [KritiNode] = []
        skipTrivia()
        conditions.append(try parseExpression())
        try expect("}}")
        skipTrivia()
        branches.append(try parseExpression())
        while true {
            try expect("{{")
            skipTrivia()
            if atKeyword("elif") {
                position += 4
                skipTrivia()
                conditions.append(try parseExpression())
                try expect("}}")
                skipTrivia()
                branches.append(try parseExpression())
                continue
            }
            try expectKeyword("else")
            try expect("}}")
            skipTrivia()
            let otherwise = try parseExpression()
            try expect("{{")
            try expectKeyword("end")
            try expect("}}")
            return .conditional(
                conditions: conditions, branches: branches, otherwise: otherwise,
                KritiSpan(start: start, end: position))
        }
    }

    mutating func parseRange(start: Int) throws(KritiError) -> KritiNode {
        skipTrivia()
        var index: String?
        if peek() == UInt8(ascii: "_"), peek(1).map(KritiParser.isIdentifierContinue) != true {
            position += 1
        } else {
            index = try parseBinder()
        }
        try expect(",")
        skipTrivia()
        let binder = try parseBinder()
        try expect(":=")
        skipTrivia()
        let collection = try parseExpression()
        try expect("}}")
        skipTrivia()
        let body = try parseExpression()
        try expect("{{")
        try expectKeyword("end")
        try expect("}}")
        return .range(index: index, binder: binder, collection, body: body, KritiSpan(start: start, end: position))
    }

    mutating func parseBinder() throws(KritiError) -> String {
        let length = identifierLength()
        guard length > 0 else { throw unexpected() }
        let name = identifier(at: position, length: length)
        guard !KritiParser.keywords.contains(name) else { throw unexpected() }
        position += length
        return name
    }
}
