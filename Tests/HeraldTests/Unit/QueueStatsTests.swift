import Testing

@testable import Herald

@Suite("Queue stats text")
struct QueueStatsTests {
    @Test func longTriggerNamesAreNeverCut() {
        let name = "notify_fulfilment_partner_about_order_changes"
        let stats = QueueStats(triggers: [.init(trigger: name), .init(trigger: "short")])
        #expect(stats.table.contains(name + " "))
    }

    @Test func failedAttemptsAreLabelledApartFromFailedEvents() {
        var trigger = QueueStats.Trigger(trigger: "t")
        trigger.failed = 3
        trigger.failuresLastHour = 6
        let lines = QueueStats(triggers: [trigger]).table.split(separator: "\n")
        #expect(lines[0].hasSuffix(" failed_tries_1h"))
        #expect(lines[2] == "(failed_tries_1h counts failed attempts in the last hour, retries included; the other columns count events)")
    }

    @Test func redeliveriesAreFoundWhereTheAttemptCountRestarts() {
        #expect(EventPage.redeliveryMarks([1, 2, 1, 2]) == [false, false, true, false])
        #expect(EventPage.redeliveryMarks([1, 1]) == [false, true])
        #expect(EventPage.redeliveryMarks([]) == [])
    }

    @Test func lastHTTPErrorShowsABodyExcerptNotTheStatusTwice() {
        var trigger = QueueStats.Trigger(trigger: "t")
        trigger.lastError = .init(
            at: "2026-11-23T17:00:00Z", statusCode: 500, errorClass: "http", message: "HTTP 500",
            responseExcerpt: "database is down")
        let table = QueueStats(triggers: [trigger]).table
        #expect(table.contains("last error t: 2026-11-23T17:00:00Z HTTP 500: response: database is down"))
        #expect(!table.contains("HTTP 500: HTTP 500"))
    }
}
