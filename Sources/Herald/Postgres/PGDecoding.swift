import CLibPQ

/// A Swift type a text-format column decodes to, in the manner of postgres-nio's
/// `PostgresDecodable`: a value that does not parse is an error naming the column and the
/// text, never a silent zero or empty string.
public protocol PGDecodable {
    /// The value for PostgreSQL's text form, or nil when `text` is not one.
    static func decode(pgText text: UnsafePointer<CChar>, length: Int) -> Self?
}

extension String: PGDecodable {
    public static func decode(pgText text: UnsafePointer<CChar>, length: Int) -> String? {
        text.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }
}

extension Int64: PGDecodable {
    public static func decode(pgText text: UnsafePointer<CChar>, length: Int) -> Int64? {
        // Parsed from the bytes: no String is made for the (very many) ids and counts.
        text.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
            var index = 0
            var negative = false
            if length > 0 && bytes[0] == UInt8(ascii: "-") {
                negative = true
                index = 1
            }
            guard index < length else { return nil }
            var value: Int64 = 0
            while index < length {
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                let (times, overflowTimes) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflowSum) =
                    negative ? times.subtractingReportingOverflow(Int64(digit)) : times.addingReportingOverflow(Int64(digit))
                guard !overflowTimes, !overflowSum else { return nil }
                value = sum
                index += 1
            }
            return value
        }
    }
}

extension Int: PGDecodable {
    public static func decode(pgText text: UnsafePointer<CChar>, length: Int) -> Int? {
        Int64.decode(pgText: text, length: length).flatMap { Int(exactly: $0) }
    }
}

/// Transaction ids (`xid8`): 64 bits, the epoch above the 32-bit id.
extension UInt64: PGDecodable {
    public static func decode(pgText text: UnsafePointer<CChar>, length: Int) -> UInt64? {
        Int64.decode(pgText: text, length: length).flatMap { UInt64(exactly: $0) }
    }
}

extension Int32: PGDecodable {
    public static func decode(pgText text: UnsafePointer<CChar>, length: Int) -> Int32? {
        Int64.decode(pgText: text, length: length).flatMap { Int32(exactly: $0) }
    }
}

extension Double: PGDecodable {
    public static func decode(pgText text: UnsafePointer<CChar>, length: Int) -> Double? {
        Double(String(cString: text))
    }
}

extension Bool: PGDecodable {
    /// PostgreSQL's text form of boolean: `t` or `f`.
    public static func decode(pgText text: UnsafePointer<CChar>, length: Int) -> Bool? {
        guard length == 1 else { return nil }
        switch UInt8(bitPattern: text[0]) {
        case UInt8(ascii: "t"): return true
        case UInt8(ascii: "f"): return false
        default: return nil
        }
    }
}

extension PGResult {
    /// The value of a NOT NULL column: throws when it is NULL or does not decode as `T`.
    public func decode<T: PGDecodable>(_ type: T.Type, row: Int, column: Int) throws(PGError) -> T {
        guard let value = try decodeIfPresent(type, row: row, column: column) else {
            throw mismatch(row: row, column: column, expected: T.self, found: "NULL")
        }
        return value
    }

    /// The value of a nullable column: nil for NULL, throws when it does not decode as `T`.
    public func decodeIfPresent<T: PGDecodable>(_ type: T.Type, row: Int, column: Int) throws(PGError) -> T? {
        guard row < rowCount, column < columnCount else {
            throw PGError(
                code: .unexpectedResult,
                message: "row \(row), column \(column) is outside the result (\(rowCount) rows, \(columnCount) columns)")
        }
        if isNull(row, column) { return nil }
        guard let text = rawValue(row, column) else { return nil }
        let length = valueLength(row, column)
        guard let value = T.decode(pgText: text, length: length) else {
            throw mismatch(row: row, column: column, expected: T.self, found: String(cString: text))
        }
        return value
    }

    /// Every row decoded by `decodeRow`, which reads its row through ``decode(_:row:column:)``.
    public func rows<Row>(_ decodeRow: (Int) throws(PGError) -> Row) throws(PGError) -> [Row] {
        var rows: [Row] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount { rows.append(try decodeRow(row)) }
        return rows
    }

    private func mismatch(row: Int, column: Int, expected: Any.Type, found: String) -> PGError {
        let shown = found.count > 40 ? String(found.prefix(40)) + "…" : found
        return PGError(
            code: .unexpectedResult,
            message: "column \"\(columnName(column))\" of row \(row): expected \(expected), found \(shown)")
    }
}
