import Foundation
import Testing

@testable import Herald

/// `partitioning:` parsing and the partition arithmetic, without a database.
@Suite("Partition layout")
struct PartitionUnitTests {
    func parse(_ section: String) throws(ConfigError) -> HeraldConfig {
        try ConfigLoader.parse(
            yaml: "database: {url: 'postgres://127.0.0.1/app'}\n\(section)", file: "herald.yaml", environment: [:])
    }

    /// 2026-12-02 15:37:20 UTC.
    static let now = 1_796_225_840

    @Test func partitioningIsOffUnlessConfiguredAndDefaultsToDailyWithThreeAhead() throws {
        #expect(try parse("").partitioning == nil)
        let settings = try #require(try parse("partitioning: {}").partitioning)
        #expect(settings == PartitioningSettings(intervalSeconds: 86400, premake: 3))
        #expect(try parse("partitioning: {interval: 1h, premake: 24}").partitioning == PartitioningSettings(intervalSeconds: 3600, premake: 24))
        #expect(try parse("partitioning: {interval: 1m}").partitioning?.intervalSeconds == 60)
    }

    @Test func checkConfigSaysTheLogIsPartitioned() throws {
        #expect(!ConfigSummary.text(for: try parse("")).contains("partitioning"))
        #expect(
            ConfigSummary.text(for: try parse("partitioning: {interval: 1h, premake: 24}"))
                .contains("partitioning: 1h partitions, 24 made ahead; retention drops whole partitions"))
        #expect(ConfigSummary.text(for: try parse("partitioning: {interval: 1d}")).contains("partitioning: 1d partitions"))
        #expect(ConfigSummary.text(for: try parse("partitioning: {interval: 90m}")).contains("partitioning: 90m partitions"))
    }

    @Test func checkConfigSaysWhatRetentionDeletes() throws {
        #expect(ConfigSummary.text(for: try parse("")).contains("retention: off (finished events are kept;"))
        #expect(
            ConfigSummary.text(for: try parse("retention: {delivered_after: 7d, interval: 30m}"))
                .contains("retention: delivered after 7d, failed kept, checked every 30m"))
        #expect(DurationText.setting(seconds: 1_209_600) == "14d")
        #expect(DurationText.setting(seconds: 61) == "61s")
    }

    @Test(arguments: [
        ("partitioning: {interval: 30s}", "partitioning.interval", "whole minutes"),
        ("partitioning: {interval: 90s}", "partitioning.interval", "whole minutes"),
        ("partitioning: {interval: 1}", "partitioning.interval", "a unit is required"),
        ("partitioning: {interval: daily}", "partitioning.interval", "not a duration"),
        ("partitioning: {premake: 0}", "partitioning.premake", "between 1 and"),
        ("partitioning: {premake: many}", "partitioning.premake", "integer"),
        ("partitioning: {intervall: 1d}", "partitioning.intervall", "unknown key"),
    ])
    func badPartitioningSettingsNameTheKey(yaml: String, key: String, message: String) {
        #expect(throws: ConfigError.self) { try parse(yaml) }
        do {
            _ = try parse(yaml)
        } catch {
            #expect(error.key == key, "\(error)")
            #expect(error.message.contains(message), "\(error)")
        }
    }

    @Test func rangesAlignToTheIntervalInUTC() {
        let hourly = PartitionLayout(intervalSeconds: 3600, premake: 3)
        #expect(hourly.rangeStart(containing: Self.now) == 1_796_223_600)  // 15:00
        #expect(PartitionLayout.timestampText(1_796_223_600) == "2026-12-02 15:00:00+00")
        let daily = PartitionLayout(intervalSeconds: 86400, premake: 3)
        #expect(PartitionLayout.timestampText(daily.rangeStart(containing: Self.now)) == "2026-12-02 00:00:00+00")
        #expect(hourly.rangeStart(containing: 1_796_223_600) == 1_796_223_600)
    }

    @Test func premakeCoversTheCurrentRangeAndTheNextOnes() {
        let layout = PartitionLayout(intervalSeconds: 3600, premake: 3)
        let names = layout.premadeStarts(now: Self.now).map { PartitionLayout.partitionName(table: "event_log", start: $0) }
        #expect(names == ["event_log_p20261202_1500", "event_log_p20261202_1600", "event_log_p20261202_1700", "event_log_p20261202_1800"])
        let minutes = PartitionLayout(intervalSeconds: 60, premake: 1)
        #expect(
            minutes.premadeStarts(now: Self.now).map { PartitionLayout.partitionName(table: "invocation_log", start: $0) }
                == ["invocation_log_p20261202_1537", "invocation_log_p20261202_1538"])
    }

    @Test func onlyRangesNoPartitionCoversAreMissing() {
        let layout = PartitionLayout(intervalSeconds: 3600, premake: 3)
        let fifteen = 1_796_223_600
        let existing = [
            PartitionBounds(name: "event_log_legacy", lower: nil, upper: fifteen + 3600),
            PartitionBounds(name: "event_log_p20261202_1700", lower: fifteen + 7200, upper: fifteen + 10800),
            PartitionBounds(name: "event_log_default", lower: nil, upper: nil, isDefault: true),
        ]
        // 15:00 is inside the legacy partition, 17:00 exists; the DEFAULT partition covers nothing.
        #expect(layout.missing(layout.premadeStarts(now: Self.now), existing: existing) == [fifteen + 3600, fifteen + 10800])
        // A range of rows waiting in DEFAULT, far ahead, is missing too, once.
        #expect(layout.missing([fifteen + 86400, fifteen + 86400], existing: existing) == [fifteen + 86400])
    }

    @Test func theCutoverStaysAtLeastTheMarginAheadOnABoundary() {
        let hourly = PartitionLayout(intervalSeconds: 3600, premake: 3)
        #expect(hourly.conversionMarginSeconds == 600)
        #expect(PartitionLayout.timestampText(hourly.cutover(now: Self.now)) == "2026-12-02 16:00:00+00")
        // 15:55 + 10 min is past 16:00: the cutover moves to 17:00.
        #expect(PartitionLayout.timestampText(hourly.cutover(now: 1_796_226_900)) == "2026-12-02 17:00:00+00")
        let minutes = PartitionLayout(intervalSeconds: 60, premake: 3)
        #expect(minutes.cutover(now: Self.now) - Self.now >= 60)
        #expect(minutes.cutover(now: Self.now) % 60 == 0)
    }

    @Test func onlyPartitionsWhollyOlderThanTheHorizonAreRetentionCandidates() {
        let partitions = [
            PartitionBounds(name: "event_log_p20261202_1400", lower: 100, upper: 200),
            PartitionBounds(name: "event_log_legacy", lower: nil, upper: 100),
            PartitionBounds(name: "event_log_p20261202_1500", lower: 200, upper: 300),
            PartitionBounds(name: "event_log_default", lower: nil, upper: nil, isDefault: true),
        ]
        #expect(PartitionLayout.pastHorizon(partitions, horizon: 250).map(\.name) == ["event_log_legacy", "event_log_p20261202_1400"])
        #expect(PartitionLayout.pastHorizon(partitions, horizon: 300).count == 3)
        #expect(PartitionLayout.pastHorizon(partitions, horizon: 99).isEmpty)
        #expect(PartitionLayout.sibling(of: "event_log_p20261202_1400", table: "invocation_log") == "invocation_log_p20261202_1400")
        #expect(PartitionLayout.sibling(of: "event_log_legacy", table: "invocation_log") == "invocation_log_legacy")
    }

    @Test func theConversionScriptKeepsEveryIndexAndLocksOnlyForCatalogWork() {
        let script = PartitionConversion(layout: PartitionLayout(intervalSeconds: 3600, premake: 3)).script(now: Self.now)
        for index in PartitionedTable.all.flatMap(\.indexes) {
            #expect(script.contains("CREATE INDEX \(index.name) ON "), "\(index.name)")
        }
        #expect(script.contains("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS event_log_id_created_at"))
        #expect(script.contains("FOR VALUES FROM (MINVALUE) TO ('2026-12-02 16:00:00+00')"))
        // Everything between the lock and COMMIT is catalog work: no index is built there.
        let locked = script.components(separatedBy: "IN ACCESS EXCLUSIVE MODE").last ?? ""
        #expect(!locked.contains("CONCURRENTLY"))
        #expect(!locked.contains("VALIDATE"))
    }
}
