/// Herald's `batch:` extension on an event trigger: many events per request, as
/// `{"events": [payload, …]}`, each payload exactly as it would be sent alone.
///
/// A batch is sent when it holds `max_events` events, when one more event would take its body
/// past `max_bytes`, or when its oldest event was captured `max_wait_ms` ago, whichever comes
/// first. An event larger than `max_bytes` on its own goes in a batch of one.
public struct BatchConfig: Sendable, Equatable {
    public var maxEvents: Int
    public var maxBytes: Int
    public var maxWaitMilliseconds: Int

    public static let defaultMaxEvents = 100
    public static let defaultMaxBytes = 1 << 20
    public static let defaultMaxWaitMilliseconds = 1000
    /// Bounds that keep one request (and the events it leases) reasonable.
    public static let maxEventsLimit = 10_000
    public static let maxWaitLimitMilliseconds = 60_000

    public init(
        maxEvents: Int = defaultMaxEvents, maxBytes: Int = defaultMaxBytes,
        maxWaitMilliseconds: Int = defaultMaxWaitMilliseconds
    ) {
        self.maxEvents = maxEvents
        self.maxBytes = maxBytes
        self.maxWaitMilliseconds = maxWaitMilliseconds
    }

    public var description: String {
        "batch(max_events \(maxEvents), max_bytes \(maxBytes), max_wait_ms \(maxWaitMilliseconds))"
    }
}

extension TriggerParser {
    /// `batch: {max_events, max_bytes, max_wait_ms}`; every key is optional.
    func parseBatch(_ node: ConfigNode) throws(ConfigError) -> BatchConfig? {
        guard let batch = try node.child("batch") else { return nil }
        try batch.rejectUnknownKeys(["max_events", "max_bytes", "max_wait_ms"])
        var config = BatchConfig()
        if let value = try batch.child("max_events") {
            config.maxEvents = try value.int()
            guard (1...BatchConfig.maxEventsLimit).contains(config.maxEvents) else {
                throw value.error(
                    .invalidValue, "max_events must be between 1 and \(BatchConfig.maxEventsLimit), not \(config.maxEvents)")
            }
        }
        if let value = try batch.child("max_bytes") {
            config.maxBytes = try value.int()
            guard config.maxBytes >= 1024 else {
                throw value.error(.invalidValue, "max_bytes must be at least 1024, not \(config.maxBytes)")
            }
        }
        if let value = try batch.child("max_wait_ms") {
            config.maxWaitMilliseconds = try value.int()
            guard (0...BatchConfig.maxWaitLimitMilliseconds).contains(config.maxWaitMilliseconds) else {
                throw value.error(
                    .invalidValue,
                    "max_wait_ms must be between 0 and \(BatchConfig.maxWaitLimitMilliseconds), not \(config.maxWaitMilliseconds)")
            }
        }
        return config
    }
}
