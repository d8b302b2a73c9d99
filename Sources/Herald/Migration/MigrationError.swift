/// Why `migrate-from-hasura` refused; nothing was changed.
public struct MigrationError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        public static let noHasuraCatalog = Code("no_hasura_catalog")
        public static let tableNotFound = Code("table_not_found")
        public static let hasuraStillDelivering = Code("hasura_still_delivering")
        public static let unsupportedScheduledEvent = Code("unsupported_scheduled_event")

        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public var description: String { message }
}
