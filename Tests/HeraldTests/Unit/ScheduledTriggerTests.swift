import Foundation
import Testing

@testable import Herald

@Suite("Scheduled triggers")
struct ScheduledTriggerTests {
    static let base = "database: {url: 'postgres://app@127.0.0.1/app'}\n"

    func parse(_ yaml: String, environment: [String: String] = [:]) throws(ConfigError) -> HeraldConfig {
        try ConfigLoader.parse(yaml: Self.base + yaml, file: "herald.yaml", environment: environment)
    }

    static func date(_ text: String) -> Date {
        ISO8601DateFormatter().date(from: text) ?? .distantPast
    }

    // MARK: Configuration

    @Test func cronTriggerReadsEveryHasuraKey() throws {
        let config = try parse(
            """
            cron_triggers:
              - name: eod_reports
                webhook: "{{REPORTS_URL}}/eod"
                schedule: 0 22 * * 1-5
                include_in_metadata: true
                payload: {region: eu, limit: 10, ratio: 0.5, dry: false, tags: [a, "1"], none: null}
                headers:
                  - {name: X-Api-Key, value_from_env: REPORTS_KEY}
                retry_conf: {num_retries: 3, retry_interval_seconds: 30, timeout_seconds: 45, tolerance_seconds: 600}
                comment: end of day
            """, environment: ["REPORTS_URL": "http://127.0.0.1:9000", "REPORTS_KEY": "k"])
        let trigger = try #require(config.trigger(named: "eod_reports"))
        #expect(trigger.isCronTrigger)
        #expect(trigger.webhook == "http://127.0.0.1:9000/eod")
        #expect(trigger.schedule?.cronSchedule?.description == "0 22 * * 1-5")
        #expect(trigger.schedule?.payloadJSON == #"{"region":"eu","limit":10,"ratio":0.5,"dry":false,"tags":["a","1"],"none":null}"#)
        #expect(trigger.schedule?.toleranceSeconds == 600)
        #expect(trigger.retry == RetryConfig(numRetries: 3, intervalSeconds: 30, timeoutSeconds: 45))
        #expect(trigger.headers.first?.value == "k")
        #expect(trigger.comment == "end of day")
        #expect(config.cronTriggers.map(\.name) == ["eod_reports"])
    }

    @Test func cronDefaultsAreHasuras() throws {
        let config = try parse(
            """
            cron_triggers:
              - {name: tick, webhook: "http://127.0.0.1:9/t", schedule: "* * * * *"}
            """)
        let trigger = try #require(config.trigger(named: "tick"))
        #expect(trigger.retry == RetryConfig(numRetries: 0, intervalSeconds: 10, timeoutSeconds: 60))
        #expect(trigger.schedule?.toleranceSeconds == 21600)
        #expect(trigger.schedule?.payloadJSON == "null")
    }

    @Test func oneOffRouteIsAlwaysServedAndNeverCaptured() throws {
        let config = try parse("tables: []\n")
        let route = try #require(config.trigger(named: TriggerConfig.oneOffName))
        #expect(route.schedule?.kind == .oneOff)
        #expect(CaptureTrigger.triggers(for: route).isEmpty)
    }

    @Test func cronProblemsAreReportedTogetherWithFileAndLine() {
        do {
            _ = try parse(
                """
                cron_triggers:
                  - {name: bad_schedule, webhook: "http://127.0.0.1:9/a", schedule: "61 * * * *"}
                  - {name: no_env, webhook_from_env: MISSING_URL, schedule: "* * * * *"}
                  - {name: typo, webhook: "http://127.0.0.1:9/a", schedule: "* * * * *", retry_conf: {intervl: 3}}
                """)
            Issue.record("expected an error")
        } catch {
            let all = [error] + error.others
            #expect(all.count == 3)
            #expect(all.allSatisfy { $0.line != nil && $0.file == "herald.yaml" })
            #expect(error.description.contains("cron trigger 'bad_schedule'"))
            #expect(error.description.contains("MISSING_URL"))
            #expect(error.description.contains("intervl"))
        }
    }

    @Test func cronAndEventTriggerNamesMustDiffer() {
        do {
            _ = try parse(
                """
                tables:
                  - table: {schema: public, name: orders}
                    event_triggers:
                      - name: same
                        definition: {insert: {columns: "*"}}
                        webhook: http://127.0.0.1:9/e
                cron_triggers:
                  - {name: same, webhook: "http://127.0.0.1:9/c", schedule: "* * * * *"}
                """)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .duplicateTrigger)
            #expect(error.description.contains("duplicate trigger name 'same'"))
        }
    }

    // MARK: Ticks

    @Test func aNewTriggerStartsAtItsNextTick() {
        let schedule = try! CronSchedule("*/5 * * * *")
        let plan = CronTickPlan.plan(
            schedule: schedule, after: nil, now: Self.date("2026-12-03T10:02:30Z"), toleranceSeconds: 60)
        #expect(plan.created.isEmpty && plan.missed.isEmpty)
        #expect(plan.next == Self.date("2026-12-03T10:05:00Z"))
    }

    @Test func ticksSinceTheLastLoggedOneSplitIntoOnTimeAndMissed() {
        let schedule = try! CronSchedule("* * * * *")
        let plan = CronTickPlan.plan(
            schedule: schedule, after: Self.date("2026-12-03T10:00:00Z"), now: Self.date("2026-12-03T10:05:10Z"),
            toleranceSeconds: 150)
        #expect(plan.missed == ["10:01", "10:02"].map { Self.date("2026-12-03T\($0):00Z") })
        #expect(plan.created == ["10:03", "10:04", "10:05"].map { Self.date("2026-12-03T\($0):00Z") })
        #expect(plan.next == Self.date("2026-12-03T10:06:00Z"))
    }

    @Test func aTickAtExactlyNowIsDue() {
        let schedule = try! CronSchedule("* * * * *")
        let plan = CronTickPlan.plan(
            schedule: schedule, after: Self.date("2026-12-03T10:00:30Z"), now: Self.date("2026-12-03T10:01:00Z"),
            toleranceSeconds: 0)
        #expect(plan.created == [Self.date("2026-12-03T10:01:00Z")])
    }

    @Test func missedTicksAreBoundedNewestKept() {
        let schedule = try! CronSchedule("* * * * *")
        let plan = CronTickPlan.plan(
            schedule: schedule, after: Self.date("2026-12-03T00:00:00Z"), now: Self.date("2026-12-03T01:00:00Z"),
            toleranceSeconds: 0, limit: 10)
        #expect(plan.missed.count == 10)
        #expect(plan.missedUnrecorded == 49)
        #expect(plan.missed.last == Self.date("2026-12-03T00:59:00Z"))
        #expect(plan.created == [Self.date("2026-12-03T01:00:00Z")])
    }

    // MARK: Delivery

    static let key = EventIDKey(bytes: Array(repeating: 7, count: 32), v2From: 1)

    func cronTrigger(comment: String? = "nightly") throws -> TriggerConfig {
        let config = try parse(
            """
            cron_triggers:
              - name: nightly
                webhook: http://127.0.0.1:9/n
                schedule: "0 3 * * *"
                payload: {job: vacuum}
                retry_conf: {tolerance_seconds: 60}
            """ + (comment.map { "\n    comment: \($0)" } ?? ""))
        return try #require(config.trigger(named: "nightly"))
    }

    func claimed(_ payload: String, tries: Int = 0, attemptedBefore: Bool = false, trigger: String = "nightly") -> ClaimedEvent {
        ClaimedEvent(
            id: 5, triggerName: trigger, table: TableName(schema: "herald", name: "cron_triggers"), payload: payload,
            tries: tries, createdAt: "2026-12-03T03:00:00.000001Z", createdAtEpoch: 0,
            importedID: "9b2f4c1e-8d7a-4b6c-9e3f-2a1b0c9d8e7f", attemptedBefore: attemptedBefore)
    }

    @Test func cronBodyIsHasurasScheduledPayload() throws {
        let route = try cronTrigger()
        let decoded = ScheduledEventDecoder.decode(
            claimed(#"{"scheduled_time": "2026-12-03T03:00:00Z"}"#), route: route,
            now: Self.date("2026-12-03T03:00:01Z"), environment: [:], leaseSeconds: 300)
        #expect(decoded.refusal == nil)
        let request = DeliveryRequest(
            event: claimed(#"{"scheduled_time": "2026-12-03T03:00:00Z"}"#), trigger: decoded.trigger,
            installation: Self.key, timestamp: 1)
        let body = String(decoding: request.body, as: UTF8.self)
        #expect(
            body
                == #"{"scheduled_time":"2026-12-03T03:00:00Z","payload":{"job":"vacuum"},"name":"nightly","id":"9b2f4c1e-8d7a-4b6c-9e3f-2a1b0c9d8e7f","comment":"nightly"}"#)
        #expect(request.headers.contains { $0.name == "webhook-id" && $0.value == "9b2f4c1e-8d7a-4b6c-9e3f-2a1b0c9d8e7f" })
    }

    @Test(arguments: [
        "2026-12-03T22:00:00Z", "2026-12-03T22:00:00.25Z", "2026-12-03T22:00:00.250000Z", "1970-01-01T00:00:00Z",
        "2000-02-29T23:59:59Z", "2100-03-01T00:00:00.000001Z", "1999-12-31T12:30:45.5Z",
    ])
    func handParsedTimesMatchFoundations(text: String) throws {
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let expected = try #require(ISO8601DateFormatter().date(from: text) ?? fractional.date(from: text))
        let parsed = try #require(ScheduledEventDecoder.parseTime(text))
        #expect(abs(parsed.timeIntervalSince1970 - expected.timeIntervalSince1970) < 0.001)
    }

    @Test(arguments: ["2026-12-03 22:00:00Z", "2026-13-03T22:00:00Z", "2026-12-03T22:00:00", "2026-12-03T22:00:00+01:00", ""])
    func malformedTimesAreRefused(text: String) {
        #expect(ScheduledEventDecoder.parseTime(text) == nil)
    }

    @Test func aTickTimeIsReadWithoutAJSONParserOnlyInItsExactForm() {
        #expect(ScheduledEventDecoder.cronTickTime(#"{"scheduled_time": "2026-12-03T22:00:00Z"}"#) == "2026-12-03T22:00:00Z")
        #expect(ScheduledEventDecoder.cronTickTime(#"{"scheduled_time": "x\"y"}"#) == nil)
        #expect(ScheduledEventDecoder.cronTickTime(#"{"payload": 1, "scheduled_time": "2026-12-03T22:00:00Z"}"#) == nil)
    }

    @Test func consoleShowsATickAsItIsSent() throws {
        let route = try cronTrigger()
        let shown = EventPage.prettyPayload(
            event: claimed(#"{"scheduled_time": "2026-12-03T03:00:00Z"}"#), trigger: route, id: "abc")
        #expect(shown.contains(#""scheduled_time" : "2026-12-03T03:00:00Z""#))
        #expect(shown.contains(#""name" : "nightly""#))
        #expect(shown.contains(#""job" : "vacuum""#))
    }

    @Test func aTickClaimedPastItsToleranceIsMissedUnlessRedelivered() throws {
        let route = try cronTrigger(comment: nil)
        let payload = #"{"scheduled_time": "2026-12-03T03:00:00Z"}"#
        let late = Self.date("2026-12-03T03:01:01Z")
        let missed = ScheduledEventDecoder.decode(
            claimed(payload), route: route, now: late, environment: [:], leaseSeconds: 300)
        #expect(missed.refusal?.0 == .missed)
        #expect(missed.refusal?.1.contains("tolerance_seconds 60") == true)
        let redelivered = ScheduledEventDecoder.decode(
            claimed(payload, attemptedBefore: true), route: route, now: late, environment: [:], leaseSeconds: 300)
        #expect(redelivered.refusal == nil)
        let retry = ScheduledEventDecoder.decode(
            claimed(payload, tries: 1), route: route, now: late, environment: [:], leaseSeconds: 300)
        #expect(retry.refusal == nil)
    }

    @Test func oneOffEventCarriesItsOwnDeliverySettings() throws {
        let route = TriggerConfig.oneOffRoute(timeoutSeconds: 60)
        let stored = """
            {"comment": "remind", "headers": [{"name": "X-A", "value": "1"}, {"name": "X-B", "value_from_env": "B_VALUE"}],
             "payload": {"user": 42}, "webhook": "http://127.0.0.1:9/remind",
             "retry_conf": {"num_retries": 2, "retry_interval_seconds": 5, "timeout_seconds": 900, "tolerance_seconds": 30},
             "scheduled_time": "2026-12-03T09:00:00.5Z"}
            """
        let decoded = ScheduledEventDecoder.decode(
            claimed(stored, trigger: TriggerConfig.oneOffName), route: route, now: Self.date("2026-12-03T09:00:10Z"),
            environment: ["B_VALUE": "two"], leaseSeconds: 300)
        #expect(decoded.refusal == nil)
        #expect(decoded.trigger.webhook == "http://127.0.0.1:9/remind")
        #expect(decoded.trigger.retry == RetryConfig(numRetries: 2, intervalSeconds: 5, timeoutSeconds: 299))
        #expect(decoded.trigger.headers.map(\.value) == ["1", "two"])
        #expect(decoded.trigger.headers[1].isSecret)
        let body = DeliveryRequest.payload(
            event: claimed(stored, trigger: TriggerConfig.oneOffName), trigger: decoded.trigger, messageID: "m")
        #expect(body == #"{"scheduled_time":"2026-12-03T09:00:00.5Z","payload":{"user":42},"id":"m","comment":"remind"}"#)
    }

    @Test func oneOffEventWithAnUnsetHeaderVariableFailsWithoutRetry() {
        let stored = """
            {"headers": [{"name": "X-B", "value_from_env": "NOT_SET"}], "payload": null, "webhook": "http://127.0.0.1:9/r",
             "retry_conf": {"num_retries": 5}, "scheduled_time": "2026-12-03T09:00:00Z", "comment": null}
            """
        let decoded = ScheduledEventDecoder.decode(
            claimed(stored, trigger: TriggerConfig.oneOffName), route: TriggerConfig.oneOffRoute(timeoutSeconds: 60),
            now: Self.date("2026-12-03T09:00:01Z"), environment: [:], leaseSeconds: 300)
        #expect(decoded.refusal?.0 == .unsendable)
        #expect(decoded.refusal?.1.contains("NOT_SET") == true)
        let policy = RetryPolicy(trigger: decoded.trigger, worker: WorkerSettings())
        let verdict = policy.verdict(
            attempt: 1, result: .failure(.unsendable, message: "x"), directive: nil, now: Date())
        #expect(verdict.decision == .failed)
        #expect(verdict.breakerFailure == nil)
    }
}
