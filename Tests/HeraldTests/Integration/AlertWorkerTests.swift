import Foundation
import Testing

@testable import Herald

/// Alerts raised by a running worker and by the CLI, delivered to a real receiver and
/// verified with the reference Standard Webhooks library.
@Suite("Worker alerts", .enabled(if: TestEnvironment.integrationEnabled))
struct AlertWorkerTests {
    /// The fixture with an `alerts:` section and `keys` added to `items_hook`.
    func setUp(webhook: String, alerts: String, retry: String, keys: String = "") throws -> WorkerFixture {
        let setup = try WorkerFixture(webhook: webhook, retry: retry)
        var yaml = try String(contentsOfFile: setup.configPath, encoding: .utf8)
        if !keys.isEmpty { yaml = yaml.replacingOccurrences(of: "        webhook: ", with: "        \(keys)\n        webhook: ") }
        yaml = yaml.replacingOccurrences(
            of: "tables:\n",
            with: "alerts: {webhook: '\(alerts)', signing: {secret_from_env: ALERT_SECRET}, digest_interval_sec: 1}\ntables:\n")
        try yaml.write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        return setup
    }

    let environment = ["ALERT_SECRET": AlertDeliveryTests.secret]

    func alerts(_ receiver: Receiver) throws -> [[String: Any]] {
        try AlertDeliveryTests.verifiedPayloads(try receiver.requests())
    }

    func types(_ receiver: Receiver) throws -> [String] {
        try alerts(receiver).compactMap { $0["type"] as? String }
    }

    @Test func failedEventsDisabledTriggersAndBreakerChangesAreAlertedSigned() throws {
        let hooks = try Receiver()
        let ops = try Receiver()
        let setup = try setUp(
            webhook: hooks.url("/failfor/3"), alerts: ops.url("/ok"), retry: "{num_retries: 0, interval_sec: 0, timeout_sec: 5}",
            keys: "circuit_breaker: {failure_ratio: 0.5, min_requests: 3, window_sec: 10, open_sec: 1}")
        try setup.insert(4)
        let worker = try WorkerProcess(configPath: setup.configPath, environment: environment)
        #expect(try eventually(timeout: 20) { try types(ops).contains("herald.circuit.opened") }, "\(worker.log)")
        #expect(try eventually(timeout: 20) { try setup.count("status = 'failed'") == 4 })
        // The receiver recovers after 3 s; the next event closes the breaker.
        Thread.sleep(forTimeInterval: 3)
        try setup.insert(1)
        #expect(try eventually(timeout: 20) { try types(ops).contains("herald.circuit.closed") }, "\(worker.log)")
        let failed = try alerts(ops).filter { $0["type"] as? String == "herald.event.failed" }
        #expect(failed.count == 4)
        let data = try #require(failed.first?["data"] as? [String: Any])
        #expect(data["trigger"] as? String == "items_hook")
        #expect(data["op"] as? String == "INSERT")
        #expect(data["last_status"] as? Int == 503)
        #expect((data["event_id"] as? String).flatMap(UUID.init(uuidString:)) != nil)
        #expect(worker.terminate() == 0)
    }

    @Test func receiverAndOperatorDisablesAndEnablesAreAlerted() throws {
        let hooks = try Receiver()
        let ops = try Receiver()
        let setup = try setUp(
            webhook: hooks.url("/gone/1"), alerts: ops.url("/ok"), retry: "{num_retries: 0, interval_sec: 0, timeout_sec: 5}")
        try setup.insert(1)
        let worker = try WorkerProcess(configPath: setup.configPath, environment: environment)
        #expect(try eventually { try types(ops).contains("herald.trigger.disabled") }, "\(worker.log)")
        let enabled = try runHerald(["enable-trigger", "--config", setup.configPath, "items_hook"], environment: environment)
        #expect(enabled.status == 0, "\(enabled.stderr)")
        #expect(try types(ops).contains("herald.trigger.enabled"))
        #expect(try eventually { try setup.count("status = 'delivered'") == 1 })
        let reasons = try alerts(ops).compactMap { ($0["data"] as? [String: Any])?["reason"] as? String }
        #expect(reasons.contains { $0.contains("410") })
        #expect(worker.terminate() == 0)
    }

    /// Every failure raises an alert to a receiver that does not exist: deliveries go on at
    /// their own pace, and a flood becomes a digest, not a queue that slows the worker.
    @Test func anUnreachableAlertReceiverDoesNotSlowDeliveries() throws {
        let hooks = try Receiver()
        let setup = try setUp(
            webhook: hooks.url("/status/500"), alerts: "http://127.0.0.1:1/alerts",
            retry: "{num_retries: 0, interval_sec: 0, timeout_sec: 5}", keys: "circuit_breaker: false")
        try setup.insert(300)
        let started = Date()
        let worker = try WorkerProcess(configPath: setup.configPath, environment: environment)
        #expect(try eventually(timeout: 30) { try setup.count("status = 'failed'") == 300 }, "\(worker.log)")
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed < 10, "300 failing events took \(elapsed) s with an unreachable alert receiver")
        #expect(worker.process.isRunning)
        #expect(worker.terminate(timeout: 15) == 0)
    }
}
