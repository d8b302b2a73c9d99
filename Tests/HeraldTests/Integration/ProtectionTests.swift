import Foundation
import Testing

@testable import Herald

/// Protecting receivers end to end: receiver-controlled stop, trigger state shared by every
/// worker, rate limits and circuit breakers, against a real PostgreSQL and real receivers.
@Suite("Receiver protection", .enabled(if: TestEnvironment.integrationEnabled))
struct ProtectionTests {
    /// Adds Herald extension keys to the fixture's trigger `items_hook` (its config file is
    /// rewritten; the capture triggers do not depend on them).
    func setUp(
        webhook: String, retry: String = "{num_retries: 0, interval_sec: 0, timeout_sec: 5}", worker: String = "",
        keys: String = ""
    ) throws -> WorkerFixture {
        let setup = try WorkerFixture(webhook: webhook, retry: retry, worker: worker)
        if !keys.isEmpty {
            let yaml = try String(contentsOfFile: setup.configPath, encoding: .utf8)
                .replacingOccurrences(of: "        webhook: ", with: "        \(keys)\n        webhook: ")
            try yaml.write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        }
        return setup
    }

    func triggerState(_ setup: WorkerFixture) throws -> (enabled: String?, reason: String?) {
        let result = try setup.connection.query(
            "SELECT enabled, reason FROM herald.trigger_state WHERE trigger_name = 'items_hook'")
        return result.rowCount == 0 ? (nil, nil) : (result[0, 0], result[0, 1])
    }

    @Test func goneDisablesTheTriggerLaterEventsWaitAndEnableTriggerResumesThem() throws {
        let receiver = try Receiver()
        let setup = try setUp(
            webhook: receiver.url("/gone/1"), retry: "{num_retries: 2, interval_sec: 0, timeout_sec: 5}")
        let worker = try WorkerProcess(configPath: setup.configPath)
        try setup.insert(1)
        #expect(try eventually { try triggerState(setup).enabled == "f" }, "\(worker.log)")
        #expect(try triggerState(setup).reason?.contains("410") == true)
        try setup.insert(5)
        Thread.sleep(forTimeInterval: 1.5)
        // Nothing lost, nothing sent: the 410'd event is pending with its try unspent.
        #expect(try receiver.stats().count == 1)
        #expect(try setup.count("status = 'pending' AND tries = 0") == 6)
        #expect(worker.log.contains("trigger disabled"))

        let listed = try runHerald(["triggers", "--config", setup.configPath])
        #expect(listed.stdout.contains("disabled"), "\(listed.stdout)\(listed.stderr)")
        let enabled = try runHerald(["enable-trigger", "--config", setup.configPath, "items_hook"])
        #expect(enabled.status == 0, "\(enabled.stderr)")
        #expect(try eventually(timeout: 10) { try setup.count("status = 'delivered'") == 6 }, "\(worker.log)")
        #expect(try setup.count("tries = 1") == 6)
        #expect(Set(try receiver.requests().compactMap { $0.header("webhook-id") }).count == 6)
        #expect(worker.terminate() == 0)
    }

    @Test func abortMessageFailsTheEventAfterOneAttemptDespiteRetriesLeft() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/abort"), retry: "{num_retries: 5, interval_sec: 0, timeout_sec: 5}")
        try setup.insert(1)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'failed'") == 1 }, "\(worker.log)")
        Thread.sleep(forTimeInterval: 0.5)
        #expect(try setup.invocations().map(\.status) == [500])
        #expect(try receiver.stats().count == 1)
        #expect(try triggerState(setup).enabled == nil)
        #expect(worker.terminate() == 0)
    }

    @Test func deliveryDisableHeaderDisablesTheTrigger() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/disable"), retry: "{num_retries: 5, interval_sec: 0, timeout_sec: 5}")
        try setup.insert(3)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try triggerState(setup).enabled == "f" }, "\(worker.log)")
        #expect(try triggerState(setup).reason?.contains("webhook-delivery") == true)
        Thread.sleep(forTimeInterval: 1)
        #expect(try setup.count("status = 'pending' AND tries = 0") == 3)
        #expect(try receiver.stats().count <= 3)
        #expect(worker.terminate() == 0)
    }

    @Test func nonRetryableStatusFailsAtOnce() throws {
        let receiver = try Receiver()
        let setup = try setUp(
            webhook: receiver.url("/status/422"),
            retry: "{num_retries: 5, interval_sec: 0, timeout_sec: 5, non_retryable_statuses: [400, 422]}")
        try setup.insert(2)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually { try setup.count("status = 'failed' AND tries = 1") == 2 }, "\(worker.log)")
        Thread.sleep(forTimeInterval: 0.5)
        #expect(try receiver.stats().count == 2)
        #expect(worker.terminate() == 0)
    }

    /// 20 events/s with a burst of 20: the first 20 at once, the other 180 over 9 s.
    @Test func rateLimitHoldsAtTheReceiverAndDoesNotSpendTries() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/fast"), keys: "rate_limit: {per_second: 20}")
        try setup.insert(200)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually(timeout: 30) { try setup.count("status = 'delivered'") == 200 }, "\(worker.log)")
        let times = try receiver.requests().map(\.time).sorted()
        #expect(times.count == 200)
        let span = times[199] - times[0]
        let rate = 180 / (times[199] - times[19])
        let busiestSecond = times[20...].map { start in times.filter { $0 >= start && $0 < start + 1 }.count }.max() ?? 0
        // The accuracy README quotes: printed so every run shows it.
        print("rate limit 20/s, burst 20: 200 events in \(span) s, \(rate)/s after the burst, busiest second \(busiestSecond)")
        #expect(span > 8.0 && span < 11.0, "200 events took \(span) s")
        #expect(rate > 17 && rate < 22, "\(rate)/s after the burst")
        // No one-second window after the burst holds more than the rate plus a little
        // jitter (a request that left late next to one that left on time).
        #expect(busiestSecond <= 23)
        #expect(try setup.count("tries = 1") == 200)
        #expect(worker.terminate() == 0)
    }

    @Test func sharedRateLimitHoldsAcrossTwoWorkers() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/fast"), keys: "rate_limit: {per_second: 10, burst: 10, shared: true}")
        try setup.insert(70)
        let first = try WorkerProcess(configPath: setup.configPath)
        let second = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually(timeout: 30) { try setup.count("status = 'delivered'") == 70 }, "\(first.log)")
        let times = try receiver.requests().map(\.time).sorted()
        #expect(times.count == 70)
        // Two workers, one bucket: 10 at once, 60 more at 10/s.
        let span = times[69] - times[0]
        print("shared rate limit 10/s, burst 10, two workers: 70 events in \(span) s, \(60 / (times[69] - times[9]))/s after the burst")
        #expect(span > 5.0 && span < 8.5, "70 events took \(span) s")
        #expect(first.terminate() == 0)
        #expect(second.terminate() == 0)
    }

    /// The receiver fails for 5 s. The breaker opens, tries stop burning, one probe per
    /// open_sec reaches the receiver, and the breaker closes when it answers again.
    @Test func circuitBreakerOpensProbesOncePerIntervalAndClosesOnRecovery() throws {
        let receiver = try Receiver()
        let setup = try setUp(
            webhook: receiver.url("/failfor/5"), retry: "{num_retries: 20, interval_sec: 0, timeout_sec: 5}",
            keys: "circuit_breaker: {failure_ratio: 0.5, min_requests: 5, window_sec: 10, open_sec: 2}")
        try setup.insert(20)
        let worker = try WorkerProcess(configPath: setup.configPath)
        #expect(try eventually(timeout: 30) { try setup.count("status = 'delivered'") == 20 }, "\(worker.log)")
        let times = try receiver.requests().map(\.time).sorted()
        let recovered = times[0] + 5
        // After the first round every failure is a probe: at most one per open_sec.
        let probes = times.filter { $0 > times[0] + 0.5 && $0 < recovered }
        #expect(probes.count <= 3, "\(probes.map { $0 - times[0] })")
        #expect(try setup.connection.query("SELECT max(tries) FROM herald.event_log")[0, 0].flatMap(Int.init) ?? 99 <= 4)
        #expect(worker.log.contains("circuit breaker opened"))
        #expect(worker.log.contains("circuit breaker closed"))
        #expect(try setup.connection.query(
            "SELECT circuit_state FROM herald.trigger_state WHERE trigger_name = 'items_hook'")[0, 0] == "closed")
        #expect(worker.terminate() == 0)
    }

    @Test func twoWorkersHonourATriggerDisabledByTheCLI() throws {
        let receiver = try Receiver()
        let setup = try setUp(webhook: receiver.url("/ok"))
        let disabled = try runHerald(
            ["disable-trigger", "--config", setup.configPath, "items_hook", "--reason", "maintenance"])
        #expect(disabled.status == 0, "\(disabled.stderr)")
        let first = try WorkerProcess(configPath: setup.configPath, readiness: true)
        let second = try WorkerProcess(configPath: setup.configPath, readiness: true)
        #expect(first.waitUntilStarted() && second.waitUntilStarted())
        try setup.insert(10)
        Thread.sleep(forTimeInterval: 2)
        #expect(try receiver.stats().count == 0)
        #expect(try setup.count("status = 'pending' AND locked_by IS NULL") == 10)
        let started = Date()
        #expect(try runHerald(["enable-trigger", "--config", setup.configPath, "items_hook"]).status == 0)
        #expect(try eventually { try setup.count("status = 'delivered'") == 10 }, "\(first.log)")
        // NOTIFY wakes the workers: well inside their poll of the trigger state.
        #expect(Date().timeIntervalSince(started) < 3)
        #expect(Set(try receiver.requests().compactMap { $0.header("webhook-id") }).count == 10)
        #expect(try receiver.stats().count == 10)
        let json = try runHerald(["triggers", "--config", setup.configPath, "--json"])
        #expect(json.stdout.contains("\"enabled\" : true"), "\(json.stdout)")
        #expect(first.terminate() == 0)
        #expect(second.terminate() == 0)
    }
}
