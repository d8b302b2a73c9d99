import Foundation

/// A function's refusal of its argument, reported as a Kriti `Function Error`.
struct KritiFunctionError: Error {
    var message: String
}

/// Kriti's `basicFuncMap` (kriti-lang `Kriti.CustomFunctions`) and Hasura's
/// `getSessionVariable`. Each behaves as its Haskell original, messages included: those
/// that take one JSON type fail with aeson's "parsing T failed, expected T, but
/// encountered U".
enum KritiFunctions {
    typealias Function = @Sendable (KritiValue) throws(KritiFunctionError) -> KritiValue

    static let getSessionVariable = "getSessionVariable"

    static let basic: [String: Function] = [
        "empty": empty,
        "size": size,
        "inverse": inverse,
        "head": head,
        "tail": tail,
        "toCaseFold": { value throws(KritiFunctionError) in
            .string(try text(value, "String").folding(options: .caseInsensitive, locale: nil))
        },
        "toLower": { value throws(KritiFunctionError) in .string(try text(value, "String").lowercased()) },
        "toUpper": { value throws(KritiFunctionError) in .string(try text(value, "String").uppercased()) },
        "toTitle": { value throws(KritiFunctionError) in .string(titleCased(try text(value, "String"))) },
        "escapeUri": { value throws(KritiFunctionError) in .string(escapeURI(try text(value, "String"))) },
        "fromPairs": fromPairs,
        "toPairs": toPairs,
        "removeNulls": removeNulls,
        "concat": concat,
        "not": { value throws(KritiFunctionError) in
            guard case .bool(let flag) = value else { throw mismatch("Bool", expected: "Boolean", value) }
            return .bool(!flag)
        },
    ]

    /// aeson's `withText`/`withArray`/... failure message.
    static func mismatch(_ context: String, expected: String, _ value: KritiValue) -> KritiFunctionError {
        KritiFunctionError(message: "parsing \(context) failed, expected \(expected), but encountered \(value.typeName)")
    }

    static func text(_ value: KritiValue, _ context: String) throws(KritiFunctionError) -> String {
        guard case .string(let string) = value else { throw mismatch(context, expected: "String", value) }
        return string
    }

    static func empty(_ value: KritiValue) throws(KritiFunctionError) -> KritiValue {
        switch value {
        case .object(let object): return .bool(object.isEmpty)
        case .array(let elements): return .bool(elements.isEmpty)
        case .string(let string): return .bool(string.unicodeScalars.allSatisfy(\.properties.isWhitespace))
        case .number(let number): return .bool(number.doubleValue == 0)
        case .bool: throw KritiFunctionError(message: "Cannot define emptiness for a boolean")
        case .null: return .bool(true)
        }
    }

    static func size(_ value: KritiValue) throws(KritiFunctionError) -> KritiValue {
        switch value {
        case .object(let object): return .number(object.count)
        case .array(let elements): return .number(elements.count)
        case .string(let string): return .number(string.unicodeScalars.count)
        case .number: return value
        case .bool(let flag): return .number(flag ? 1 : 0)
        case .null: return .number(0)
        }
    }

    static func inverse(_ value: KritiValue) throws(KritiFunctionError) -> KritiValue {
        switch value {
        case .object, .null: return value
        case .array(let elements): return .array(elements.reversed())
        case .string(let string): return .string(String(String.UnicodeScalarView(string.unicodeScalars.reversed())))
        case .number(let number):
            // Kriti divides a Scientific by zero and crashes; a clear error serves better.
            guard number.doubleValue != 0 else { throw KritiFunctionError(message: "Cannot invert 0") }
            return .number(KritiNumber(1 / number.doubleValue))
        case .bool(let flag): return .bool(!flag)
        }
    }

    static func head(_ value: KritiValue) throws(KritiFunctionError) -> KritiValue {
        switch value {
        case .array(let elements):
            guard let first = elements.first else { throw KritiFunctionError(message: "Empty array") }
            return first
        case .string(let string):
            guard let first = string.unicodeScalars.first else { throw KritiFunctionError(message: "Empty string") }
            return .string(String(first))
        default:
            throw KritiFunctionError(message: "Expected an array or string")
        }
    }

    /// Of an empty array or string Kriti's `tail` is a crash (Haskell's partial `tail`);
    /// here it is empty.
    static func tail(_ value: KritiValue) throws(KritiFunctionError) -> KritiValue {
        switch value {
        case .array(let elements): return .array(Array(elements.dropFirst()))
        case .string(let string): return .string(String(string.unicodeScalars.dropFirst()))
        default: throw KritiFunctionError(message: "Expected an array or string")
        }
    }

    /// Haskell `Data.Text.toTitle`: a letter after a non-letter takes its title case, a
    /// letter after a letter its lower case.
    static func titleCased(_ string: String) -> String {
        var result = ""
        result.unicodeScalars.reserveCapacity(string.unicodeScalars.count)
        var previousIsLetter = false
        for scalar in string.unicodeScalars {
            let isLetter: Bool
            switch scalar.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: isLetter = true
            default: isLetter = false
            }
            if isLetter {
                result += previousIsLetter ? scalar.properties.lowercaseMapping : scalar.properties.titlecaseMapping
            } else {
                result.unicodeScalars.append(scalar)
            }
            previousIsLetter = isLetter
        }
        return result
    }

    /// `Network.URI.escapeURIString isUnreserved`: every byte of the UTF-8 encoding other
    /// than ASCII letters, digits and `-_.~` becomes `%XX` (upper-case hex).
    static func escapeURI(_ string: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func fromPairs(_ value: KritiValue) throws(KritiFunctionError) -> KritiValue {
        guard case .array(let pairs) = value else { throw mismatch("Nested Arrays", expected: "Array", value) }
        var object = KritiObject(minimumCapacity: pairs.count)
        for pair in pairs {
            guard case .array(let elements) = pair else { throw mismatch("Array of Pair", expected: "Array", pair) }
            guard elements.count == 2 else {
                throw KritiFunctionError(
                    message: "Expected an array of shape [ [k1,v1], [k2,v2] ... ] - With String keys.")
            }
            object[try text(elements[0], "Key")] = elements[1]
        }
        return .object(object)
    }

    static func toPairs(_ value: KritiValue) throws(KritiFunctionError) -> KritiValue {
        guard case .object(let object) = value else { throw mismatch("Object", expected: "Object", value) }
        return .array(object.map { key, value in .array([.string(key), value]) })
    }

    static func removeNulls(_ value: KritiValue) throws(KritiFunctionError) -> KritiValue {
        guard case .array(let elements) = value else { throw mismatch("Array", expected: "Array", value) }
        return .array(elements.filter { $0 != .null })
    }

    /// Arrays of arrays flatten, arrays of strings join, arrays of objects merge with the
    /// right-most value winning (each key where it first appeared); an empty array stays
    /// an empty array. Otherwise the error is the object attempt's, as in Kriti, where it
    /// is the last alternative tried.
    static func concat(_ value: KritiValue) throws(KritiFunctionError) -> KritiValue {
        guard case .array(let elements) = value else { throw mismatch("Array", expected: "Array", value) }
        if elements.allSatisfy({ if case .array = $0 { true } else { false } }) {
            var flat: [KritiValue] = []
            for case .array(let inner) in elements { flat.append(contentsOf: inner) }
            return .array(flat)
        }
        if elements.allSatisfy({ if case .string = $0 { true } else { false } }) {
            var joined = ""
            for case .string(let inner) in elements { joined += inner }
            return .string(joined)
        }
        var merged = KritiObject()
        for element in elements {
            guard case .object(let object) = element else {
                throw mismatch("Nested Object", expected: "Object", element)
            }
            for (key, value) in object { merged[key] = value }
        }
        return .object(merged)
    }

    /// Hasura's `getSessionVariable` (graphql-engine `Data.Aeson.Kriti.Functions`): the
    /// named session variable from `$session_variables`, names compared without regard to
    /// case; `null` for a `null` name.
    static func sessionVariable(
        _ argument: KritiValue, in globals: [String: KritiValue], at span: KritiSpan
    ) throws(KritiFailure) -> KritiValue {
        if case .null = argument { return .null }
        guard case .string(let name) = argument else {
            throw KritiFailure(code: .functionError, message: "Session variable name should be a string", span: span)
        }
        if case .object(let variables)? = globals["$session_variables"] {
            let wanted = name.lowercased()
            for (key, value) in variables where key.lowercased() == wanted {
                if case .string = value { return value }
                return .string(value.jsonText)
            }
        }
        throw KritiFailure(code: .functionError, message: "Session variable \"\(name)\" not found", span: span)
    }
}
