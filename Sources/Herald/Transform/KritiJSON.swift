/// JSON text in and out of ``KritiValue``, without Foundation: a transform reads the event
/// payload once and writes the request body once per delivery, so both stay on plain
/// UTF-8 bytes.
extension KritiValue {
    /// Parses one JSON document (RFC 8259); surrounding whitespace is allowed.
    public init(json text: String) throws(KritiError) {
        try self.init(json: Array(text.utf8))
    }

    /// Parses one JSON document from UTF-8 bytes.
    public init(json bytes: [UInt8]) throws(KritiError) {
        self = try bytes.withUnsafeBufferPointer { buffer throws(KritiError) in try KritiValue(jsonBytes: buffer) }
    }

    init(jsonBytes: UnsafeBufferPointer<UInt8>) throws(KritiError) {
        var reader = JSONReader(bytes: jsonBytes)
        reader.skipWhitespace()
        let value = try reader.readValue(depth: 0)
        reader.skipWhitespace()
        guard reader.isAtEnd else { throw reader.error("Unexpected text after the JSON value") }
        self = value
    }

    /// Compact JSON text, object keys in their order.
    public var jsonText: String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        writeJSON(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Compact JSON as UTF-8 bytes, for a request body.
    public var jsonBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        writeJSON(into: &out)
        return out
    }

    func writeJSON(into out: inout [UInt8]) {
        switch self {
        case .null:
            out.append(contentsOf: "null".utf8)
        case .bool(let value):
            out.append(contentsOf: (value ? "true" : "false").utf8)
        case .number(let number):
            out.append(contentsOf: number.description.utf8)
        case .string(let string):
            KritiValue.writeJSONString(string, into: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                element.writeJSON(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            var first = true
            for (key, value) in object {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                KritiValue.writeJSONString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                value.writeJSON(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Escapes as aeson does: quote, backslash and control characters only. Runs of bytes
    /// that need no escape are copied at once.
    static func writeJSONString(_ string: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { bytes in
            var runStart = 0
            for (position, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
                runStart = position + 1
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                default:
                    let hex: StaticString = "0123456789abcdef"
                    out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                    out.append(hex.utf8Start[Int(byte >> 4)])
                    out.append(hex.utf8Start[Int(byte & 0x0F)])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// A cursor over JSON bytes. Errors carry the line and column where reading stopped.
struct JSONReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0

    /// Deep enough for any payload, shallow enough that recursion cannot overflow the stack.
    static let maximumDepth = 512

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    var isAtEnd: Bool { position >= bytes.count }

    func error(_ message: String) -> KritiError {
        let location = SourceLocation(bytes: bytes, offset: position)
        return KritiError(
            code: .invalidJSON, message: message,
            range: KritiError.SourceRange(start: location, end: location))
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    mutating func readValue(depth: Int) throws(KritiError) -> KritiValue {
        guard depth < JSONReader.maximumDepth else { throw error("JSON nested too deeply") }
        guard position < bytes.count else { throw error("Unexpected end of JSON") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            position += 1
            var object = KritiObject()
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(object)
            }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw error("Expected a string key")
                }
                let key = try readString()
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw error("Expected ':'") }
                position += 1
                skipWhitespace()
                object[key] = try readValue(depth: depth + 1)
                skipWhitespace()
                guard position < bytes.count else { throw error("Unexpected end of JSON") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return .object(object)
                } else {
                    throw error("Expected ',' or '}'")
                }
            }
        case UInt8(ascii: "["):
            position += 1
            var elements: [KritiValue] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                elements.append(try readValue(depth: depth + 1))
                skipWhitespace()
                guard position < bytes.count else { throw error("Unexpected end of JSON") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return .array(elements)
                } else {
                    throw error("Expected ',' or ']'")
                }
            }
        case UInt8(ascii: "\""):
            return .string(try readString())
        case UInt8(ascii: "t"):
            try expectWord("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectWord("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectWord("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            guard let number = JSONReader.scanNumber(bytes, at: &position) else { throw error("Invalid number") }
            return .number(number)
        default:
            throw error("Unexpected character")
        }
    }

    private mutating func expectWord(_ word: StaticString) throws(KritiError) {
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw error("Unexpected end of JSON") }
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: count)
        for offset in 0..<count where bytes[position + offset] != expected[offset] {
            throw error("Unexpected character")
        }
        position += count
    }

    /// Reads a JSON number at `position` (RFC 8259 grammar) and moves past it.
    static func scanNumber(_ bytes: UnsafeBufferPointer<UInt8>, at position: inout Int) -> KritiNumber? {
        let start = position
        var cursor = position
        func isDigit(_ index: Int) -> Bool {
            index < bytes.count && bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9")
        }
        if cursor < bytes.count, bytes[cursor] == UInt8(ascii: "-") { cursor += 1 }
        guard isDigit(cursor) else { return nil }
        if bytes[cursor] == UInt8(ascii: "0") {
            cursor += 1
        } else {
            while isDigit(cursor) { cursor += 1 }
        }
        var integral = true
        if cursor < bytes.count, bytes[cursor] == UInt8(ascii: "."), isDigit(cursor + 1) {
            integral = false
            cursor += 1
            while isDigit(cursor) { cursor += 1 }
        }
        if cursor < bytes.count, bytes[cursor] == UInt8(ascii: "e") || bytes[cursor] == UInt8(ascii: "E") {
            var exponent = cursor + 1
            if exponent < bytes.count, bytes[exponent] == UInt8(ascii: "+") || bytes[exponent] == UInt8(ascii: "-") {
                exponent += 1
            }
            if isDigit(exponent) {
                integral = false
                cursor = exponent
                while isDigit(cursor) { cursor += 1 }
            }
        }
        let literal = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<cursor]), as: UTF8.self)
        position = cursor
        if integral, let value = Int64(literal) { return KritiNumber(value) }
        guard let value = Double(literal) else { return nil }
        return KritiNumber(double: value, literal: literal)
    }

    /// Reads a string starting at the opening quote, decoding JSON escapes.
    mutating func readString() throws(KritiError) -> String {
        position += 1
        let start = position
        // Fast path: no escapes.
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let string = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                position += 1
                return string
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            position += 1
        }
        var scalars: [UInt8] = Array(bytes[start..<position])
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return String(decoding: scalars, as: UTF8.self)
            case UInt8(ascii: "\\"):
                position += 1
                guard let scalar = JSONReader.readEscape(bytes, at: &position) else {
                    throw error("Invalid escape")
                }
                scalars.append(contentsOf: String(Character(scalar)).utf8)
            case 0x00..<0x20:
                throw error("Control character in string")
            default:
                scalars.append(byte)
                position += 1
            }
        }
        throw error("Unterminated string")
    }

    /// Decodes the escape after a backslash (`position` is just past it), surrogate pairs
    /// included.
    static func readEscape(_ bytes: UnsafeBufferPointer<UInt8>, at position: inout Int) -> Unicode.Scalar? {
        guard position < bytes.count else { return nil }
        let escape = bytes[position]
        position += 1
        switch escape {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            guard let high = readHex4(bytes, at: &position) else { return nil }
            if (0xD800...0xDBFF).contains(high) {
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                    bytes[position + 1] == UInt8(ascii: "u")
                else { return nil }
                position += 2
                guard let low = readHex4(bytes, at: &position), (0xDC00...0xDFFF).contains(low) else { return nil }
                return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
            }
            return Unicode.Scalar(high)
        default:
            return nil
        }
    }

    private static func readHex4(_ bytes: UnsafeBufferPointer<UInt8>, at position: inout Int) -> UInt32? {
        guard position + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: return nil
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }
}
