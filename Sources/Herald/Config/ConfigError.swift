/// A configuration problem, with enough context to find it: the file, the line when the
/// YAML parser knows it, and the key path (`tables[0].event_triggers[1].retry_conf`), or the
/// environment variable at fault.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        public static let fileUnreadable = Code("file_unreadable")
        public static let syntax = Code("syntax")
        public static let unknownKey = Code("unknown_key")
        public static let missingKey = Code("missing_key")
        public static let wrongType = Code("wrong_type")
        public static let invalidValue = Code("invalid_value")
        public static let duplicateTrigger = Code("duplicate_trigger")
        public static let missingEnvironment = Code("missing_environment")
        public static let unsupported = Code("unsupported")

        public var description: String { name }
    }

    public var code: Code
    public var file: String
    public var line: Int?
    /// Dotted key path inside the file, or `$NAME` for an environment variable.
    public var key: String?
    public var message: String
    /// Further problems found in the same pass, so one run reports them all.
    public var others: [ConfigError] = []

    public init(code: Code, file: String, line: Int? = nil, key: String? = nil, message: String) {
        self.code = code
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        if let key, !key.isEmpty { location += ": \(key)" }
        let first = "\(location): \(message)"
        guard !others.isEmpty else { return first }
        return "\(others.count + 1) problems:\n" + ([first] + others.map(\.description)).map { "  " + $0 }.joined(separator: "\n")
    }

    /// One error carrying every problem in `errors` (the first leads), or nil if there is none.
    static func combining(_ errors: [ConfigError]) -> ConfigError? {
        guard var first = errors.first else { return nil }
        first.others += errors.dropFirst().flatMap { [ConfigError]([$0.withoutOthers]) + $0.others }
        return first
    }

    private var withoutOthers: ConfigError {
        var copy = self
        copy.others = []
        return copy
    }
}

/// Problems gathered while reading independent parts of the configuration, so one run
/// reports them all instead of stopping at the first (issue 17: three runs to see one
/// project's problems was two too many).
struct ProblemList {
    private(set) var all: [ConfigError] = []

    var isEmpty: Bool { all.isEmpty }

    /// Runs `body` and returns its result; a problem it throws is recorded and nil is
    /// returned, so the caller goes on with the parts that do not depend on this one.
    @discardableResult
    mutating func check<T>(_ body: () throws(ConfigError) -> T) -> T? {
        do {
            return try body()
        } catch {
            all.append(error)
            return nil
        }
    }

    mutating func record(_ problem: ConfigError) {
        all.append(problem)
    }

    mutating func record(contentsOf problems: [ConfigError]) {
        all += problems
    }

    /// The problems in file order (the sort is stable), as a reader goes through the file.
    var inFileOrder: [ConfigError] {
        all.sorted { ($0.file, $0.line ?? 0) < ($1.file, $1.line ?? 0) }
    }

    /// Throws every recorded problem as one error.
    func throwIfAny() throws(ConfigError) {
        if let combined = ConfigError.combining(all) { throw combined }
    }
}
