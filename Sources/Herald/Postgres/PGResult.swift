import CLibPQ

/// The result of one statement. Owns its `PGresult` and frees it in `deinit`.
public final class PGResult {
    public enum Format: Sendable { case text, binary }

    private let handle: OpaquePointer

    init(_ handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        PQclear(handle)
    }

    public var rowCount: Int { Int(PQntuples(handle)) }
    public var columnCount: Int { Int(PQnfields(handle)) }

    /// Rows affected by INSERT/UPDATE/DELETE, 0 when not applicable.
    public var affectedRows: Int { Int(String(cString: PQcmdTuples(handle))) ?? 0 }

    public func columnName(_ column: Int) -> String {
        String(cString: PQfname(handle, Int32(column)))
    }

    public func columnIndex(_ name: String) -> Int? {
        let index = Int(PQfnumber(handle, name))
        return index < 0 ? nil : index
    }

    public func isNull(_ row: Int, _ column: Int) -> Bool {
        PQgetisnull(handle, Int32(row), Int32(column)) == 1
    }

    /// The value's bytes as libpq holds them (NUL-terminated), valid while the result lives.
    func rawValue(_ row: Int, _ column: Int) -> UnsafePointer<CChar>? {
        PQgetvalue(handle, Int32(row), Int32(column)).map { UnsafePointer($0) }
    }

    func valueLength(_ row: Int, _ column: Int) -> Int {
        Int(PQgetlength(handle, Int32(row), Int32(column)))
    }

    /// A text-format value, nil for SQL NULL.
    public subscript(row: Int, column: Int) -> String? {
        guard !isNull(row, column), let value = PQgetvalue(handle, Int32(row), Int32(column)) else { return nil }
        return String(cString: value)
    }

    /// A text-format value by column name, nil for SQL NULL or an unknown column.
    public subscript(row: Int, column: String) -> String? {
        guard let index = columnIndex(column) else { return nil }
        return self[row, index]
    }

    /// The raw bytes of a value (binary-format results), nil for SQL NULL.
    public func bytes(_ row: Int, _ column: Int) -> [UInt8]? {
        guard !isNull(row, column), let value = PQgetvalue(handle, Int32(row), Int32(column)) else { return nil }
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        return value.withMemoryRebound(to: UInt8.self, capacity: length) {
            Array(UnsafeBufferPointer(start: $0, count: length))
        }
    }

    /// Every row's value in `column`, for single-column results.
    public func column(_ column: Int) -> [String?] {
        (0..<rowCount).map { self[$0, column] }
    }

    func errorField(_ code: UInt8) -> String? {
        PGConnection.trimmed(PQresultErrorField(handle, Int32(code)))
    }
}
