/// A value that must never reach a log, an error message, /stats or the console: its
/// description, debug description and reflection all print `<redacted>`, so interpolating
/// it (or a struct holding it) by mistake leaks nothing. Read it only where it is used.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The secret itself; every read is a place to review.
    public let value: String

    public init(_ value: String) {
        self.value = value
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
