import Foundation
import Testing
import Yams

enum Promtool {
    /// promtool on PATH, if any.
    static var path: String? {
        (TestEnvironment.variables["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/promtool" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// config/prometheus-alerts.yaml against the real `promtool` (Debian's prometheus package,
/// installed by scripts/test). Without promtool these are skipped on a developer's machine;
/// under CI they run and fail.
@Suite(
    "Prometheus alerting rules",
    .enabled(
        if: Promtool.path != nil || TestEnvironment.variables["CI"] == "true",
        "promtool not found: install Debian's prometheus package (scripts/test does)"))
struct PrometheusRulesTests {
    static let rulesPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../config/prometheus-alerts.yaml").standardized.path

    static func runPromtool(_ arguments: [String]) throws -> CommandResult {
        let promtool = try #require(Promtool.path, "promtool not found: install Debian's prometheus package")
        return try runTool([promtool] + arguments)
    }

    @Test func rulesFilePassesPromtoolCheck() throws {
        let result = try Self.runPromtool(["check", "rules", Self.rulesPath])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("SUCCESS"))
    }

    /// `promtool test rules` compares annotations too; they are checked (templates parse) by
    /// `check rules` above, so this runs on a copy without them and asserts which alerts fire.
    @Test func eachRuleFiresOnItsConditionAndOnlyThen() throws {
        let rules = try #require(try Yams.load(yaml: String(contentsOfFile: Self.rulesPath, encoding: .utf8)) as? [String: Any])
        var groups = try #require(rules["groups"] as? [[String: Any]])
        let names = groups.flatMap { ($0["rules"] as? [[String: Any]] ?? []).compactMap { $0["alert"] as? String } }
        // Every rule is exercised below; a new one needs a case there.
        #expect(Set(names) == [
            "HeraldEventsFailed", "HeraldCircuitOpen", "HeraldOldestPendingEventOld", "HeraldWorkerNotReady",
            "HeraldTriggerDisabled", "HeraldAlertWebhookFailing", "HeraldSourceDown", "HeraldOrderedKeyBlocked",
            "HeraldPartitionDefaultRows", "HeraldPartitionsHeldBack",
        ])
        for index in groups.indices {
            let groupRules = try #require(groups[index]["rules"] as? [[String: Any]])
            groups[index]["rules"] = groupRules.map { $0.filter { $0.key != "annotations" } }
        }
        let stripped = try temporaryFile(try Yams.dump(object: ["groups": groups]))
        let test = try temporaryFile(
            """
            rule_files: [\(stripped)]
            evaluation_interval: 1m
            tests:
              - interval: 1m
                input_series:
                  - series: 'herald_deliveries_total{job="herald",instance="w1",trigger="orders",outcome="failed"}'
                    values: '0 0 0 3x25'
                  - series: 'herald_deliveries_total{job="herald",instance="w1",trigger="users",outcome="delivered"}'
                    values: '0+10x25'
                  # Open, with failing half-open probes (2) in between.
                  - series: 'herald_circuit_state{job="herald",instance="w1",trigger="orders"}'
                    values: '1 1 2 1 1 1 1 1 2 1 1 1 1 1 1'
                  - series: 'herald_circuit_state{job="herald",instance="w1",trigger="users"}'
                    values: '1 1 1 0x12'
                  - series: 'herald_oldest_pending_age_seconds{job="herald",instance="w1"}'
                    values: '0+60x20'
                  - series: 'herald_ready{job="herald",instance="w1"}'
                    values: '1 1 0x12'
                  - series: 'herald_trigger_enabled{job="herald",instance="w1",trigger="orders"}'
                    values: '1 1 0x12'
                  - series: 'herald_trigger_enabled{job="herald",instance="w1",trigger="users"}'
                    values: '1x14'
                  - series: 'herald_alerts_failed_total{job="herald",instance="w1"}'
                    values: '0 0 1x25'
                  - series: 'herald_source_ready{job="herald",instance="w1",source="billing"}'
                    values: '1 1 0x12'
                  - series: 'herald_source_ready{job="herald",instance="w1",source="main"}'
                    values: '1x14'
                  - series: 'herald_blocked_keys{job="herald",instance="w1",trigger="orders"}'
                    values: '0 0 2 2 0x10'
                  - series: 'herald_partition_default_rows{job="herald",instance="w1"}'
                    values: '0 0 40 0x10'
                  - series: 'herald_partitions_held_back{job="herald",instance="w1"}'
                    values: '0 1x500'
                alert_rule_test:
                  - {eval_time: 5m, alertname: HeraldEventsFailed, exp_alerts: [{exp_labels: {severity: warning, job: herald, instance: w1, trigger: orders}}]}
                  - {eval_time: 20m, alertname: HeraldEventsFailed, exp_alerts: []}
                  - {eval_time: 9m, alertname: HeraldCircuitOpen, exp_alerts: []}
                  - {eval_time: 12m, alertname: HeraldCircuitOpen, exp_alerts: [{exp_labels: {severity: warning, job: herald, instance: w1, trigger: orders}}]}
                  - {eval_time: 10m, alertname: HeraldOldestPendingEventOld, exp_alerts: []}
                  - {eval_time: 12m, alertname: HeraldOldestPendingEventOld, exp_alerts: [{exp_labels: {severity: warning, job: herald, instance: w1}}]}
                  - {eval_time: 3m, alertname: HeraldWorkerNotReady, exp_alerts: []}
                  - {eval_time: 5m, alertname: HeraldWorkerNotReady, exp_alerts: [{exp_labels: {severity: critical, job: herald, instance: w1}}]}
                  - {eval_time: 1m, alertname: HeraldTriggerDisabled, exp_alerts: []}
                  - {eval_time: 3m, alertname: HeraldTriggerDisabled, exp_alerts: [{exp_labels: {severity: warning, job: herald, instance: w1, trigger: orders}}]}
                  - {eval_time: 1m, alertname: HeraldAlertWebhookFailing, exp_alerts: []}
                  - {eval_time: 5m, alertname: HeraldAlertWebhookFailing, exp_alerts: [{exp_labels: {severity: warning, job: herald, instance: w1}}]}
                  - {eval_time: 3m, alertname: HeraldSourceDown, exp_alerts: []}
                  - {eval_time: 5m, alertname: HeraldSourceDown, exp_alerts: [{exp_labels: {severity: critical, job: herald, instance: w1, source: billing}}]}
                  - {eval_time: 1m, alertname: HeraldOrderedKeyBlocked, exp_alerts: []}
                  - {eval_time: 3m, alertname: HeraldOrderedKeyBlocked, exp_alerts: [{exp_labels: {severity: warning, job: herald, instance: w1, trigger: orders}}]}
                  - {eval_time: 5m, alertname: HeraldOrderedKeyBlocked, exp_alerts: []}
                  - {eval_time: 1m, alertname: HeraldPartitionDefaultRows, exp_alerts: []}
                  - {eval_time: 2m, alertname: HeraldPartitionDefaultRows, exp_alerts: [{exp_labels: {severity: warning, job: herald, instance: w1}}]}
                  - {eval_time: 4m, alertname: HeraldPartitionDefaultRows, exp_alerts: []}
                  - {eval_time: 5h, alertname: HeraldPartitionsHeldBack, exp_alerts: []}
                  - {eval_time: 7h, alertname: HeraldPartitionsHeldBack, exp_alerts: [{exp_labels: {severity: warning, job: herald, instance: w1}}]}
            """)
        let result = try Self.runPromtool(["test", "rules", test])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
    }
}
