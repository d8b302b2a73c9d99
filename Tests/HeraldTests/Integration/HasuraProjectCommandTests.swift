import Foundation
import Testing

@testable import Herald

/// Issue 17 through the `herald` executable: a `{{VAR}}` header reaches the receiver filled
/// and stays out of the invocation rows, and `check-config` names every problem of a Hasura
/// export in one run.
@Suite("Hasura project commands", .enabled(if: TestEnvironment.integrationEnabled))
struct HasuraProjectCommandTests {
    @Test func templatedHeaderArrivesFilledAndIsRedactedInTheInvocationRow() throws {
        let receiver = try Receiver()
        let environment = ["NEAR_NETWORK": "mainnet-7"]
        let setup = try WorkerFixture(webhook: receiver.url("/ok"))
        let yaml = try String(contentsOfFile: setup.configPath, encoding: .utf8)
            .replacingOccurrences(
                of: "webhook: ", with: "headers: [{name: X-Network, value: 'net-{{NEAR_NETWORK}}'}]\n        webhook: ")
        try yaml.write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        try setup.insert(1)
        let worker = try WorkerProcess(configPath: setup.configPath, environment: environment)
        #expect(try eventually { try setup.count("status = 'delivered'") == 1 }, "\(worker.log)")
        #expect(try receiver.requests().map { $0.header("x-network") } == ["net-mainnet-7"])
        let recorded = try setup.connection.query("SELECT request_headers::text FROM herald.invocation_log")
        #expect(recorded.rowCount == 1)
        #expect(recorded[0, 0]?.contains("X-Network") == true)
        #expect(recorded[0, 0]?.contains("mainnet-7") == false)
        #expect(!worker.log.contains("mainnet-7"))
        #expect(worker.terminate() == 0)
    }

    @Test func checkConfigNamesAMissingHeaderVariableAndShowsOnlyItsName() throws {
        let path = try temporaryFile(
            workerConfigYAML(databaseURL: "postgres://app@127.0.0.1/app", webhook: "http://127.0.0.1:9/x")
                .replacingOccurrences(
                    of: "webhook: ", with: "headers: [{name: X-Network, value: '{{NEAR_NETWORK}}'}]\n        webhook: "))
        let missing = try runHerald(["check-config", "--config", path])
        #expect(missing.status == 78)
        #expect(missing.stderr.contains("NEAR_NETWORK is not set (header 'X-Network' of trigger 'items_hook'"), "\(missing.stderr)")
        let set = try runHerald(["check-config", "--config", path], environment: ["NEAR_NETWORK": "mainnet-7"])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("header X-Network: <env NEAR_NETWORK>"))
        #expect(!set.stdout.contains("mainnet-7"))
    }

    @Test func checkConfigReportsTheTenProblemsOfAnExportInOneRunWithFileAndLine() throws {
        let result = try runHerald(["check-config", "--config", Fixtures.problemsConfig])
        #expect(result.status == 78)
        #expect(result.stderr.contains("10 problems:"), "\(result.stderr)")
        for place in [
            "databases/databases.yaml:7:", "databases/databases.yaml:10:", "public_orders.yaml:5:", "public_orders.yaml:14:",
            "public_orders.yaml:17:", "public_orders.yaml:19:", "public_users.yaml:10:", "cron_triggers.yaml:3:",
            "cron_triggers.yaml:13:", "cron_triggers.yaml:18:",
        ] {
            #expect(result.stderr.contains(place), "\(place) missing from: \(result.stderr)")
        }
    }
}
