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
    /// Walks Unicode scalars, not `Character`s: a quote followed by a combining mark is one
    /// Swift `Character` that equals no quote, yet the browser still ends the attribute at it.
    public static func escape(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out.append(contentsOf: "&amp;".unicodeScalars)
            case "<": out.append(contentsOf: "&lt;".unicodeScalars)
            case ">": out.append(contentsOf: "&gt;".unicodeScalars)
            case "\"": out.append(contentsOf: "&quot;".unicodeScalars)
            case "'": out.append(contentsOf: "&#39;".unicodeScalars)
            default: out.append(scalar)
            }
        }
        return String(out)
    }
}
