import Foundation

/// One partition of a range-partitioned log as found in the catalog. Bounds are unix
/// seconds; nil for MINVALUE / MAXVALUE. The DEFAULT partition has neither and `isDefault`.
public struct PartitionBounds: Sendable, Equatable {
    public var name: String
    public var lower: Int?
    public var upper: Int?
    public var isDefault = false

    public init(name: String, lower: Int?, upper: Int?, isDefault: Bool = false) {
        self.name = name
        self.lower = lower
        self.upper = upper
        self.isDefault = isDefault
    }

    /// Whether this partition holds any part of [start, end).
    func overlaps(start: Int, end: Int) -> Bool {
        guard !isDefault else { return false }
        return (lower ?? Int.min) < end && start < (upper ?? Int.max)
    }
}

/// Which ranges exist, which to create and which are past retention: pure arithmetic on
/// unix seconds, so every rule is unit-tested without a database. Ranges are aligned to
/// multiples of the interval since the epoch (a daily one starts at UTC midnight).
public struct PartitionLayout: Sendable, Equatable {
    public let intervalSeconds: Int
    public let premake: Int

    public init(intervalSeconds: Int, premake: Int) {
        self.intervalSeconds = intervalSeconds
        self.premake = premake
    }

    /// The start of the range holding `time`.
    public func rangeStart(containing time: Int) -> Int {
        let remainder = time % intervalSeconds
        return time - (remainder < 0 ? remainder + intervalSeconds : remainder)
    }

    /// The range holding `now` and the `premake` after it.
    public func premadeStarts(now: Int) -> [Int] {
        let first = rangeStart(containing: now)
        return (0...premake).map { first + $0 * intervalSeconds }
    }

    /// Range starts (of `wanted`) that no existing partition covers, in order.
    public func missing(_ wanted: [Int], existing: [PartitionBounds]) -> [Int] {
        Set(wanted).sorted().filter { start in
            !existing.contains { $0.overlaps(start: start, end: start + intervalSeconds) }
        }
    }

    /// How far ahead of the conversion the old table's range reaches: writes go on into it
    /// while the conversion prepares, so its bound must stay ahead of the clock until the
    /// swap; one interval, at least a minute and at most ten.
    public var conversionMarginSeconds: Int { min(max(intervalSeconds, 60), 600) }

    /// The upper bound of the converted (legacy) partition: the first range boundary at
    /// least ``conversionMarginSeconds`` after `now`.
    public func cutover(now: Int) -> Int {
        rangeStart(containing: now + conversionMarginSeconds) + intervalSeconds
    }

    /// Partitions wholly older than `horizon` (their upper bound at or before it), oldest
    /// first. Never the DEFAULT partition, never one reaching MAXVALUE.
    public static func pastHorizon(_ partitions: [PartitionBounds], horizon: Int) -> [PartitionBounds] {
        partitions.filter { !$0.isDefault && ($0.upper.map { $0 <= horizon } ?? false) }
            .sorted { ($0.upper ?? 0) < ($1.upper ?? 0) }
    }

    /// A range bound as PostgreSQL reads it: `2026-12-02 15:00:00+00`.
    public static func timestampText(_ time: Int) -> String {
        let parts = utc(time)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d+00", parts.year, parts.month, parts.day, parts.hour, parts.minute,
            parts.second)
    }

    private static func utc(_ time: Int) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        var seconds = time_t(time)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return (
            Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min),
            Int(parts.tm_sec)
        )
    }

    /// `event_log_p20261202_1500`: the table and the range start in UTC, to the minute, so
    /// names sort by time.
    public static func partitionName(table: String, start: Int) -> String {
        let parts = utc(start)
        let text = String(format: "%04d%02d%02d_%02d%02d", parts.year, parts.month, parts.day, parts.hour, parts.minute)
        return "\(table)_p\(text)"
    }

    /// The partition holding what the old table held, up to the conversion.
    public static func legacyName(table: String) -> String { "\(table)_legacy" }
    public static func defaultName(table: String) -> String { "\(table)_default" }

    /// The invocation-log partition of the same range as an event-log partition.
    public static func sibling(of eventPartition: String, table: String) -> String? {
        guard eventPartition.hasPrefix("event_log_") else { return nil }
        return table + "_" + eventPartition.dropFirst("event_log_".count)
    }
}
