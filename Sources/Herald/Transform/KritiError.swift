/// A Kriti template that does not parse, or that fails on one input.
///
/// One error type for the whole engine, in the manner of postgres-nio's `PSQLError`: a
/// stable ``Code`` to branch on (Kriti's own error codes, plus one for JSON input), the
/// message Kriti gives, and where in the template it happened. ``isParseError`` separates
/// a template that can never run (a configuration error at load) from one that failed on
/// this event's data.
public struct KritiError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String {
            case parseError = "Parse Error"
            case lexError = "Lex Error"
            case nameError = "Name Error"
            case attributeError = "Attribute Error"
            case typeError = "Type Error"
            case indexError = "Index Error"
            case functionError = "Function Error"
            case invalidJSON = "Invalid JSON"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The template's syntax is wrong.
        public static let parseError = Code(.parseError)
        /// The template has a character no token starts with.
        public static let lexError = Code(.lexError)
        /// A variable or function name that is not bound.
        public static let nameError = Code(.nameError)
        /// A required field (`.name`, `['name']`) missing from an object.
        public static let attributeError = Code(.attributeError)
        /// A value of the wrong type for the operation.
        public static let typeError = Code(.typeError)
        /// An array index out of range.
        public static let indexError = Code(.indexError)
        /// A function rejected its argument.
        public static let functionError = Code(.functionError)
        /// Input given as JSON text did not parse (not a Kriti error: Herald's own).
        public static let invalidJSON = Code(.invalidJSON)

        /// Kriti's name for the code, as in its serialized errors (`Parse Error`, ...).
        public var description: String { base.rawValue }

        var isParse: Bool { base == .parseError || base == .lexError }
    }

    /// A position in the template: line and column count from 1, columns in characters.
    public struct SourceLocation: Hashable, Sendable {
        public var line: Int
        public var column: Int

        public init(line: Int, column: Int) {
            self.line = line
            self.column = column
        }
    }

    /// The part of the template the error is about; `end` is just past it.
    public struct SourceRange: Hashable, Sendable {
        public var start: SourceLocation
        public var end: SourceLocation

        public init(start: SourceLocation, end: SourceLocation) {
            self.start = start
            self.end = end
        }
    }

    public var code: Code
    public var message: String
    public var range: SourceRange

    public init(code: Code, message: String, range: SourceRange) {
        self.code = code
        self.message = message
        self.range = range
    }

    /// True for a template that cannot be compiled, false for one that failed on its input.
    public var isParseError: Bool { code.isParse }

    /// Line of the error's start, counting from 1.
    public var line: Int { range.start.line }
    /// Column of the error's start, counting from 1.
    public var column: Int { range.start.column }

    public var description: String {
        "\(code) at line \(line), column \(column): \(message)"
    }

    /// The error as Kriti serializes it (and Hasura returns it): `error_code`, `message` and
    /// `source_position`, whose lines Kriti counts from 0 and columns from 1.
    public var serialized: KritiValue {
        var position = KritiObject(minimumCapacity: 4)
        position["start_line"] = .number(range.start.line - 1)
        position["start_column"] = .number(range.start.column)
        position["end_line"] = .number(range.end.line - 1)
        position["end_column"] = .number(range.end.column)
        var object = KritiObject(minimumCapacity: 3)
        object["error_code"] = .string(code.description)
        object["message"] = .string(message)
        object["source_position"] = .object(position)
        return .object(object)
    }
}

typealias SourceLocation = KritiError.SourceLocation

extension KritiError.SourceLocation {
    /// The line and column of a byte offset into UTF-8 source; columns count characters
    /// (Unicode scalars), as Kriti's lexer does.
    init(bytes: UnsafeBufferPointer<UInt8>, offset: Int) {
        var line = 1
        var column = 1
        var index = 0
        let limit = min(offset, bytes.count)
        while index < limit {
            let byte = bytes[index]
            if byte == 0x0A {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
            index += 1
        }
        self.init(line: line, column: column)
    }

    init(source: [UInt8], offset: Int) {
        self = source.withUnsafeBufferPointer { Self(bytes: $0, offset: offset) }
    }
}
