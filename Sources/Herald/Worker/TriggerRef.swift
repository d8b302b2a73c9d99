/// A trigger within its source: trigger names are unique per source only, so state that
/// lives beside other sources' (flow control's gates, metrics) is keyed by both.
/// A string literal names a trigger of the default source.
public struct TriggerRef: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var source: String
    public var name: String

    public init(source: String = SourceConfig.defaultName, name: String) {
        self.source = source
        self.name = name
    }

    public init(stringLiteral value: String) {
        self.init(name: value)
    }

    public static func < (lhs: TriggerRef, rhs: TriggerRef) -> Bool {
        (lhs.source, lhs.name) < (rhs.source, rhs.name)
    }

    /// `name` for the default source, `source/name` otherwise.
    public var description: String { source == SourceConfig.defaultName ? name : "\(source)/\(name)" }
}
