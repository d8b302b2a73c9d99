/// HTML built by string interpolation that escapes by default: `"<td>\(name)</td>"` as a
/// ``Markup`` escapes `name`; only other ``Markup`` values are inserted as they are. Payloads,
/// headers and response bodies are user data, so no page can forget to escape one.
public struct Markup: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    public private(set) var html: String

    public init(stringLiteral value: String) {
        html = value
    }

    public init(stringInterpolation: Interpolation) {
        html = stringInterpolation.html
    }

    init(trusted html: String) {
        self.html = html
    }

    public var description: String { html }

    public struct Interpolation: StringInterpolationProtocol {
        var html = ""

        public init(literalCapacity: Int, interpolationCount: Int) {
            html.reserveCapacity(literalCapacity + interpolationCount * 16)
        }

        public mutating func appendLiteral(_ literal: String) {
            html += literal
        }

        public mutating func appendInterpolation(_ text: String) {
            html += Markup.escape(text)
        }

        public mutating func appendInterpolation<T: BinaryInteger>(_ number: T) {
            html += String(number)
        }

        public mutating func appendInterpolation(_ markup: Markup) {
            html += markup.html
        }

        public mutating func appendInterpolation(_ parts: [Markup]) {
            for part in parts { html += part.html }
        }
    }

    /// Escapes the five characters that matter in text and in quoted attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
