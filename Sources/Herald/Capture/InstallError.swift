/// Why `install-triggers` refused to change anything.
public struct InstallError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        public static let tableNotFound = Code("table_not_found")
        public static let columnNotFound = Code("column_not_found")
        public static let notATable = Code("not_a_table")
        public static let noPrimaryKey = Code("no_primary_key")
        public static let invalidFilter = Code("invalid_filter")
        public static let unsupportedPlacement = Code("unsupported_placement")

        public var description: String { name }
    }

    public var code: Code
    public var trigger: String
    public var table: TableName
    public var column: String?
    public var message: String
    /// Further tables and columns found missing in the same check.
    public var others: [InstallError] = []

    public var description: String {
        others.isEmpty ? message : ([message] + others.map(\.message)).joined(separator: "\n")
    }
}
