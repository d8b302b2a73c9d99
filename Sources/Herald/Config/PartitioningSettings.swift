/// `partitioning: {interval: 1d, premake: 3}`: the event log and the invocation log are
/// range-partitioned by `created_at` (opt-in; `install-triggers` converts them).
public struct PartitioningSettings: Sendable, Equatable {
    /// Length of one partition. Whole minutes, at least one (partition names carry the
    /// start to the minute).
    public var intervalSeconds = 86400
    /// How many intervals ahead of the current one are created in advance.
    public var premake = 3

    public init(intervalSeconds: Int = 86400, premake: Int = 3) {
        self.intervalSeconds = intervalSeconds
        self.premake = premake
    }

    static let keys = ["interval", "premake"]
    static let minimumIntervalSeconds = 60
    /// A premade range nobody writes into costs a table and its indexes each; a year of
    /// daily partitions is already more than anyone needs ahead.
    static let maximumPremake = 400

    public var layout: PartitionLayout { PartitionLayout(intervalSeconds: intervalSeconds, premake: premake) }

    /// Reads the section; every error names `partitioning.<key>`.
    static func parse(_ section: ConfigNode) throws(ConfigError) -> PartitioningSettings {
        try section.rejectUnknownKeys(Set(keys))
        var settings = PartitioningSettings()
        if let node = try section.child("interval") {
            let text = try node.string()
            guard let seconds = DurationText.seconds(text) else {
                throw node.error(.invalidValue, DurationText.problem(text, in: "interval"))
            }
            guard seconds >= minimumIntervalSeconds, seconds % 60 == 0 else {
                throw node.error(.invalidValue, "interval '\(text)' must be whole minutes, at least 1m (daily, 1d, is the usual choice)")
            }
            settings.intervalSeconds = seconds
        }
        if let node = try section.child("premake") {
            let value = try node.int()
            guard (1...maximumPremake).contains(value) else {
                throw node.error(.invalidValue, "premake must be between 1 and \(maximumPremake) (got \(value))")
            }
            settings.premake = value
        }
        return settings
    }
}
