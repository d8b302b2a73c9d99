/// A JSON value as Kriti templates read and produce it.
///
/// Objects keep their keys in the order they were written (or parsed), so a transformed
/// body is sent with the key order its template shows. Equality follows aeson's, which
/// Kriti's `==` uses: objects compare as sets of key/value pairs, numbers by value.
public enum KritiValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(KritiNumber)
    case string(String)
    case array([KritiValue])
    case object(KritiObject)

    /// The type name Kriti uses in its messages (`Object`, `Array`, `String`, `Number`,
    /// `Boolean`, `Null`).
    public var typeName: String {
        switch self {
        case .null: "Null"
        case .bool: "Boolean"
        case .number: "Number"
        case .string: "String"
        case .array: "Array"
        case .object: "Object"
        }
    }

    public static func number(_ value: Int) -> KritiValue { .number(KritiNumber(value)) }
    public static func number(_ value: Double) -> KritiValue { .number(KritiNumber(value)) }
}

extension KritiValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(KritiNumber(value)) }
    public init(floatLiteral value: Double) { self = .number(KritiNumber(value)) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: KritiValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, KritiValue)...) {
        var object = KritiObject()
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
}

/// A JSON number: an exact 64-bit integer when it is one, a double otherwise.
///
/// A non-integral number parsed from JSON keeps its literal, so a `numeric` column's
/// `12.50` is sent back as written rather than as the nearest double.
public struct KritiNumber: Sendable, Hashable, Comparable, CustomStringConvertible {
    enum Storage: Sendable {
        case integer(Int64)
        case double(Double, literal: String?)
    }

    let storage: Storage

    public init(_ value: Int) { storage = .integer(Int64(value)) }
    public init(_ value: Int64) { storage = .integer(value) }

    public init(_ value: Double) {
        if value.rounded() == value, abs(value) < 9.0e15 {
            storage = .integer(Int64(value))
        } else {
            storage = .double(value, literal: nil)
        }
    }

    init(double: Double, literal: String) {
        if double.rounded() == double, abs(double) < 9.0e15 {
            storage = .integer(Int64(double))
        } else {
            storage = .double(double, literal: literal)
        }
    }

    public var doubleValue: Double {
        switch storage {
        case .integer(let value): Double(value)
        case .double(let value, _): value
        }
    }

    /// The value as an `Int`, when it is integral.
    public var intValue: Int? {
        switch storage {
        case .integer(let value): Int(exactly: value)
        case .double(let value, _): value.rounded() == value ? Int(exactly: value) : nil
        }
    }

    public static func == (lhs: KritiNumber, rhs: KritiNumber) -> Bool {
        switch (lhs.storage, rhs.storage) {
        case (.integer(let a), .integer(let b)): a == b
        default: lhs.doubleValue == rhs.doubleValue
        }
    }

    public static func < (lhs: KritiNumber, rhs: KritiNumber) -> Bool {
        switch (lhs.storage, rhs.storage) {
        case (.integer(let a), .integer(let b)): a < b
        default: lhs.doubleValue < rhs.doubleValue
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch storage {
        case .integer(let value): hasher.combine(Double(value))
        case .double(let value, _): hasher.combine(value)
        }
    }

    /// The number as JSON text: integers in full, other numbers as parsed or in the
    /// shortest form that reads back as the same double.
    public var description: String {
        switch storage {
        case .integer(let value):
            return String(value)
        case .double(_, let literal?):
            return literal
        case .double(let value, nil):
            guard value.isFinite else { return "null" }
            return value.description
        }
    }
}

/// A JSON object that remembers key order. Setting an existing key replaces its value in
/// place, as a JSON parser keeping the last duplicate would.
///
/// Event payloads are mostly small objects, so keys are found by a linear scan; a hash
/// index is built only once an object grows past ``indexThreshold`` keys.
public struct KritiObject: Sendable, Hashable, Sequence {
    public private(set) var keys: [String] = []
    public private(set) var values: [KritiValue] = []
    private var index: [String: Int]?

    static let indexThreshold = 12

    public init() {}

    public init(minimumCapacity: Int) {
        keys.reserveCapacity(minimumCapacity)
        values.reserveCapacity(minimumCapacity)
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    private func position(of key: String) -> Int? {
        if let index { return index[key] }
        return keys.firstIndex(of: key)
    }

    public subscript(key: String) -> KritiValue? {
        get { position(of: key).map { values[$0] } }
        set {
            if let position = position(of: key) {
                if let newValue {
                    values[position] = newValue
                } else {
                    keys.remove(at: position)
                    values.remove(at: position)
                    if index != nil { rebuildIndex() }
                }
            } else if let newValue {
                keys.append(key)
                values.append(newValue)
                if index != nil {
                    index?[key] = keys.count - 1
                } else if keys.count > KritiObject.indexThreshold {
                    rebuildIndex()
                }
            }
        }
    }

    private mutating func rebuildIndex() {
        var rebuilt: [String: Int] = [:]
        rebuilt.reserveCapacity(keys.count)
        for (position, key) in keys.enumerated() { rebuilt[key] = position }
        index = rebuilt
    }

    public func makeIterator() -> Zip2Sequence<[String], [KritiValue]>.Iterator {
        zip(keys, values).makeIterator()
    }

    public static func == (lhs: KritiObject, rhs: KritiObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (key, value) in lhs where rhs[key] != value { return false }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent, to agree with ==.
        hasher.combine(count)
        var combined = 0
        for (key, value) in self {
            var entry = Hasher()
            entry.combine(key)
            entry.combine(value)
            combined ^= entry.finalize()
        }
        hasher.combine(combined)
    }
}

// MARK: - Ordering

extension KritiValue {
    /// Kriti's `<`, `>`, `<=` and `>=` use aeson's derived ordering of `Value`: first by
    /// constructor (Object < Array < String < Number < Boolean < Null), then by content;
    /// objects compare as their key-sorted pairs.
    static func compare(_ lhs: KritiValue, _ rhs: KritiValue) -> Int {
        let rankL = lhs.constructorRank
        let rankR = rhs.constructorRank
        if rankL != rankR { return rankL < rankR ? -1 : 1 }
        switch (lhs, rhs) {
        case (.object(let a), .object(let b)):
            let pairsA = zip(a.keys, a.values).sorted { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) }
            let pairsB = zip(b.keys, b.values).sorted { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) }
            for (pairA, pairB) in zip(pairsA, pairsB) {
                let keyOrder = compareStrings(pairA.0, pairB.0)
                if keyOrder != 0 { return keyOrder }
                let valueOrder = compare(pairA.1, pairB.1)
                if valueOrder != 0 { return valueOrder }
            }
            return pairsA.count == pairsB.count ? 0 : (pairsA.count < pairsB.count ? -1 : 1)
        case (.array(let a), .array(let b)):
            for (x, y) in zip(a, b) {
                let order = compare(x, y)
                if order != 0 { return order }
            }
            return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
        case (.string(let a), .string(let b)):
            return compareStrings(a, b)
        case (.number(let a), .number(let b)):
            return a == b ? 0 : (a < b ? -1 : 1)
        case (.bool(let a), .bool(let b)):
            return a == b ? 0 : (!a ? -1 : 1)
        default:
            return 0
        }
    }

    /// Text ordering is by code point, as Haskell's `Text` orders.
    private static func compareStrings(_ a: String, _ b: String) -> Int {
        if a == b { return 0 }
        return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) ? -1 : 1
    }

    private var constructorRank: Int {
        switch self {
        case .object: 0
        case .array: 1
        case .string: 2
        case .number: 3
        case .bool: 4
        case .null: 5
        }
    }
}
