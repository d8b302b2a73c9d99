import Foundation
import Logging
import Testing

@testable import Herald

/// The alert dispatcher against real receivers (scripts/lib/receiver.py), signatures checked
/// with the reference `standardwebhooks` Python package.
@Suite("Alert delivery", .enabled(if: TestEnvironment.integrationEnabled))
struct AlertDeliveryTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    /// A dispatcher for `webhook`, signed with ``secret``, its retry and shutdown timing
    /// adjusted by `tuning`.
    static func dispatcher(
        _ webhook: String, digestIntervalSeconds: Int = 60, tuning adjust: (inout AlertDispatcher.Tuning) -> Void = { _ in }
    ) throws -> AlertDispatcher {
        var config = AlertsConfig(webhook: webhook)
        config.digestIntervalSeconds = digestIntervalSeconds
        config.signing = SigningConfig(
            secretEnvironmentVariable: "HERALD_ALERTS_SECRET", key: try #require(WebhookSignature.decodeSecret(secret)))
        var tuning = AlertDispatcher.Tuning()
        adjust(&tuning)
        return AlertDispatcher(config: config, logger: Logger(label: "test"), tuning: tuning)
    }

    /// Runs `dispatcher`'s sending thread around `body`, then stops it; returns how long the
    /// thread took to end. Without the ServiceGroup, so that the synchronous tests running
    /// beside these on the cooperative pool cannot delay (and so falsify) the measurement.
    @discardableResult
    static func sending(_ dispatcher: AlertDispatcher, _ body: () throws -> Void) throws -> Duration {
        dispatcher.start()
        try body()
        let started = ContinuousClock.now
        dispatcher.stop()
        #expect(eventually(timeout: 30) { dispatcher.isFinished })
        return ContinuousClock.now - started
    }

    static func failedAlert(_ number: Int) -> Alert {
        .eventFailed(
            trigger: "orders", eventID: "event-\(number)", eventNumber: Int64(number),
            table: TableName(schema: "public", name: "orders"), op: "UPDATE", tries: 6, lastStatus: 503,
            errorClass: "http", error: "HTTP 503", createdAt: "2026-11-23T17:00:00.000000Z")
    }

    /// Verifies every request with `standardwebhooks.Webhook(secret).verify` and returns the
    /// payloads it accepted; fails naming the request it rejected.
    static func verifiedPayloads(_ requests: [Receiver.Request]) throws -> [[String: Any]] {
        try standardWebhooksVerified(requests, secret: secret)
    }

    /// Runs the dispatcher's thread directly: a ServiceGroup needs the cooperative pool,
    /// which the synchronous suites running beside this one can hold for a minute on two
    /// cores. The worker-level tests (AlertWorkerTests) run it in the real ServiceGroup.
    @Test func everyAlertKindArrivesSignedAndVerifiesWithTheReferenceLibrary() throws {
        let receiver = try Receiver()
        let dispatcher = try Self.dispatcher(receiver.url("/ok"), digestIntervalSeconds: 1)
        let alerts: [Alert] = [
            Self.failedAlert(1),
            .triggerDisabled(trigger: "orders", reason: "receiver answered 410 Gone", by: "receiver"),
            .triggerEnabled(trigger: "orders", reason: "enable-trigger", by: "cli"),
            .circuitOpened(trigger: "orders", failureRatio: 0.8, requests: 10, openSeconds: 30),
            .circuitClosed(trigger: "orders", failureRatio: 0, requests: 1, openSeconds: 30),
        ]
        try Self.sending(dispatcher) {
            alerts.forEach(dispatcher.emit)
            // Five more failures: the sixth of the interval starts a digest.
            (2...6).map(Self.failedAlert).forEach(dispatcher.emit)
            #expect(eventually(timeout: 30) { dispatcher.counts.sent == 10 })
        }
        let requests = try receiver.requests()
        let payloads = try Self.verifiedPayloads(requests)
        let types = payloads.compactMap { $0["type"] as? String }
        #expect(Set(types) == Set(alerts.map(\.type) + ["herald.digest"]))
        #expect(types.filter { $0 == "herald.event.failed" }.count == 5)
        let digest = try #require(payloads.first { $0["type"] as? String == "herald.digest" }?["data"] as? [String: Any])
        #expect(digest["count"] as? Int == 1)
        #expect(digest["first_ids"] as? [String] == ["event-6"])
        let failed = try #require(payloads.first { $0["type"] as? String == "herald.event.failed" }?["data"] as? [String: Any])
        #expect(failed["event_id"] as? String == "event-1")
        #expect(failed["last_status"] as? Int == 503)
        for request in requests {
            #expect(request.header("User-Agent") == "herald/\(Herald.version)")
            #expect(request.header("Content-Type") == "application/json")
        }
        #expect(requests.count == 10)
        #expect(Set(requests.compactMap { $0.header("webhook-id") }).count == 10)
    }

    @Test func fiveHundredFailuresInOneIntervalSendFiveAlertsAndOneDigest() throws {
        let receiver = try Receiver()
        let dispatcher = try Self.dispatcher(receiver.url("/ok"), digestIntervalSeconds: 2)
        try Self.sending(dispatcher) {
            (1...500).map(Self.failedAlert).forEach(dispatcher.emit)
            let arrived = try eventually { try receiver.requests().count >= 6 }
            #expect(arrived)
            // Anything more would come within the next interval.
            Thread.sleep(forTimeInterval: 3)
        }
        let payloads = try Self.verifiedPayloads(try receiver.requests())
        #expect(payloads.count == 6)
        #expect(payloads.prefix(5).compactMap { ($0["data"] as? [String: Any])?["event_id"] as? String }
            == (1...5).map { "event-\($0)" })
        let digest = try #require(payloads.last?["data"] as? [String: Any])
        #expect(payloads.last?["type"] as? String == "herald.digest")
        #expect(digest["alert_type"] as? String == "herald.event.failed")
        #expect(digest["count"] as? Int == 495)
        #expect(digest["first_ids"] as? [String] == (6...15).map { "event-\($0)" })
        #expect(digest["interval_sec"] as? Int == 2)
        #expect(dispatcher.counts == AlertDispatcher.Counts(sent: 6, failed: 0, folded: 495, overflowed: 0))
    }

    @Test func failedAlertIsRetriedWithTheSameWebhookID() throws {
        let receiver = try Receiver()
        let dispatcher = try Self.dispatcher(receiver.url("/flaky/2")) { $0.firstRetry = .milliseconds(50) }
        try Self.sending(dispatcher) {
            dispatcher.emit(Self.failedAlert(1))
            let arrived = eventually { dispatcher.counts.sent == 1 }
            #expect(arrived)
        }
        let requests = try receiver.requests()
        #expect(requests.count == 3)
        #expect(Set(requests.compactMap { $0.header("webhook-id") }).count == 1)
        #expect(Set(requests.map(\.body)).count == 1)
        #expect(try Self.verifiedPayloads(requests).count == 3)
    }

    @Test func alertIsDroppedAndCountedAfterItsLastAttempt() throws {
        let receiver = try Receiver()
        let dispatcher = try Self.dispatcher(receiver.url("/status/500")) {
            $0.firstRetry = .milliseconds(20)
            $0.maxAttempts = 4
        }
        try Self.sending(dispatcher) {
            dispatcher.emit(Self.failedAlert(1))
            let arrived = eventually { dispatcher.counts.failed == 1 }
            #expect(arrived)
        }
        #expect(try receiver.requests().count == 4)
        #expect(dispatcher.counts.sent == 0)
    }

    @Test func unreachableReceiverNeverSlowsEmitAndShutdownIsPrompt() throws {
        let dispatcher = try Self.dispatcher("http://127.0.0.1:1/")
        let shutdown = try Self.sending(dispatcher) {
            let clock = ContinuousClock()
            // Distinct types, so the digest lets each through and the queue fills and overflows.
            let distinct = (0..<1000).map { Alert(type: "herald.test.\($0)", data: ["n": .int($0)]) }
            let elapsed = clock.measure { distinct.forEach(dispatcher.emit) }
            // Blocking on the receiver would cost a connection attempt per emit; a bound of a
            // second (not a tight timing) tells that apart on any machine.
            #expect(elapsed < .seconds(1), "1,000 emits took \(elapsed)")
            let failures = (1...1000).map(Self.failedAlert)
            let burst = clock.measure { failures.forEach(dispatcher.emit) }
            #expect(burst < .seconds(1), "1,000 emits of one type took \(burst)")
            Thread.sleep(forTimeInterval: 0.3)
        }
        #expect(shutdown < .seconds(2), "shutdown took \(shutdown)")
        let counts = dispatcher.counts
        #expect(counts.sent == 0)
        #expect(counts.folded >= 995)
        #expect(counts.failed >= 1)
    }

    @Test func requestInFlightAtShutdownFinishesInsteadOfBeingSentTwice() throws {
        let receiver = try Receiver()
        let dispatcher = try Self.dispatcher(receiver.url("/sleep/500"))
        try Self.sending(dispatcher) {
            dispatcher.emit(Self.failedAlert(1))
            let arrived = try eventually { try receiver.requests().count == 1 }
            #expect(arrived)
        }
        #expect(try receiver.requests().count == 1)
        #expect(dispatcher.counts.sent == 1)
        #expect(dispatcher.counts.failed == 0)
    }

    @Test func requestHangingAtShutdownIsAbandonedWithinTheBudget() throws {
        let receiver = try Receiver()
        let dispatcher = try Self.dispatcher(receiver.url("/sleep/20000")) { $0.shutdownBudget = .seconds(1) }
        let shutdown = try Self.sending(dispatcher) {
            dispatcher.emit(Self.failedAlert(1))
            let arrived = try eventually { try receiver.requests().count == 1 }
            #expect(arrived)
        }
        #expect(shutdown < .seconds(3), "shutdown took \(shutdown)")
        #expect(dispatcher.counts.failed == 1)
    }
}
