import ArgumentParser
import Foundation
import Herald

struct ScheduleEventCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule-event",
        abstract: "Schedule a one-off webhook call (Hasura's create_scheduled_event); prints the event id.",
        discussion: """
            Delivered by the worker at --at, with the same retries, signing and bookkeeping as
            every event. Applications schedule inside their own transaction with
              SELECT herald.schedule_event(webhook, scheduled_time, payload, headers, retry_conf, comment);
            Example:
              herald schedule-event --webhook https://api.example.com/remind --at 2026-12-24T09:00:00Z \\
                --payload '{"user": 42}' --header 'X-Kind: reminder' --header-from-env Authorization=REMIND_TOKEN
            """)

    @OptionGroup var options: GlobalOptions

    @Option(help: "The URL to POST to.")
    var webhook: String

    @Option(help: "When: an RFC 3339 time (2026-12-24T09:00:00Z), or 'now', or a delay such as 10m.")
    var at: String

    @Option(help: "JSON sent as the body's payload.")
    var payload: String?

    @Option(name: .customLong("header"), help: "A header, 'Name: value' (repeatable).")
    var headers: [String] = []

    @Option(
        name: .customLong("header-from-env"),
        help: "A header whose value the worker reads from its environment at delivery, 'Name=VARIABLE' (repeatable).")
    var headersFromEnv: [String] = []

    @Option(help: "Retries after the first attempt (default 0).")
    var retries: Int?

    @Option(help: "Seconds between attempts (default 10).")
    var retryInterval: Int?

    @Option(help: "Request timeout in seconds (default 60).")
    var timeout: Int?

    @Option(help: "Seconds after --at the first attempt may still start; later it is recorded as missed (default 21600).")
    var tolerance: Int?

    @Option(help: "A comment, sent in the body and shown by `herald scheduled`.")
    var comment: String?

    func validate() throws {
        for value in [retries, retryInterval, tolerance].compactMap({ $0 }) where value < 0 {
            throw ValidationError("--retries, --retry-interval and --tolerance take whole numbers of at least 0")
        }
        if let timeout, timeout < 1 { throw ValidationError("--timeout must be at least 1") }
        if let payload, (try? JSONSerialization.jsonObject(with: Data(payload.utf8), options: .fragmentsAllowed)) == nil {
            throw ValidationError("--payload is not valid JSON")
        }
        if Self.time(at) == nil {
            throw ValidationError("--at '\(at)' is neither an RFC 3339 time (2026-12-24T09:00:00Z), 'now', nor a delay such as 10m")
        }
    }

    /// An absolute time as PostgreSQL reads it, or a delay from now.
    static func time(_ text: String) -> String? {
        if text == "now" { return ISO8601DateFormatter().string(from: Date()) }
        if let seconds = DurationText.seconds(text) {
            return ISO8601DateFormatter().string(from: Date().addingTimeInterval(Double(seconds)))
        }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if ISO8601DateFormatter().date(from: text) != nil || fractional.date(from: text) != nil { return text }
        return nil
    }

    func run() async throws {
        try await reportingErrors {
            let config = try options.loadSourceConfig()
            if let timeout, timeout >= config.worker.leaseSeconds {
                throw CLIFailure(
                    message: "--timeout \(timeout) is not below the worker's lease (\(config.worker.leaseSeconds) s): a second worker could take the event while the first still sends it",
                    exitCode: .usage)
            }
            var headerList: [[String: String]] = []
            for header in headers {
                guard let colon = header.firstIndex(of: ":") else {
                    throw CLIFailure(message: "--header '\(header)' is not 'Name: value'", exitCode: .usage)
                }
                headerList.append([
                    "name": header[..<colon].trimmingCharacters(in: .whitespaces),
                    "value": header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces),
                ])
            }
            for header in headersFromEnv {
                let parts = header.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw CLIFailure(message: "--header-from-env '\(header)' is not 'Name=VARIABLE'", exitCode: .usage)
                }
                headerList.append(["name": parts[0], "value_from_env": parts[1]])
            }
            var retry: [String: Int] = [:]
            retry["num_retries"] = retries
            retry["retry_interval_seconds"] = retryInterval
            retry["timeout_seconds"] = timeout
            retry["tolerance_seconds"] = tolerance
            let admin = ScheduledEventAdmin(admin: try EventAdmin(connection: PGConnection(url: config.database.url)))
            let id = try admin.schedule(
                webhook: webhook, at: Self.time(at) ?? at, payload: payload, headers: try Self.json(headerList),
                retryConf: try Self.json(retry), comment: comment)
            print(id)
        }
    }

    static func json(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self)
    }
}

struct ScheduledCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduled",
        abstract: "List cron triggers (next and last tick, missed ticks) and pending scheduled events.")

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: "At most this many pending events.")
    var limit = 100

    func run() async throws {
        try await reportingErrors {
            let config = try options.loadSourceConfig()
            let admin = ScheduledEventAdmin(admin: try EventAdmin(connection: PGConnection(url: config.database.url)))
            let cron = try admin.cronStatus(config.cronTriggers)
            let pending = try admin.pending(limit: limit)
            if json {
                print(try Self.document(cron: cron, pending: pending))
                return
            }
            print("cron triggers: \(cron.count)")
            for status in cron {
                print(
                    "  \(status.name)  \(status.schedule)  next \(status.nextTick ?? "never")  last \(status.lastTick ?? "-")  24h: \(status.created24h) created, \(status.missed24h) missed  (missed in all: \(status.missedTotal))"
                )
            }
            print("pending scheduled events: \(pending.count)\(pending.count == limit ? "+" : "")")
            for event in pending {
                let what = event.cronTrigger.map { "cron \($0)" } ?? event.webhook
                var line = "  \(event.id)  at \(event.scheduledTime)  \(what)"
                if event.tries > 0 { line += "  tries \(event.tries), next \(event.nextAttemptAt)" }
                if let worker = event.lockedBy { line += "  (being delivered by \(worker))" }
                if let comment = event.comment { line += "  # \(comment)" }
                print(line)
            }
        }
    }

    static func document(cron: [CronTriggerStatus], pending: [PendingScheduledEvent]) throws -> String {
        let cronRows: [[String: Any]] = cron.map {
            [
                "name": $0.name, "schedule": $0.schedule, "next_tick": $0.nextTick ?? NSNull(),
                "last_tick": $0.lastTick ?? NSNull(), "created_24h": $0.created24h, "missed_24h": $0.missed24h,
                "missed_total": $0.missedTotal,
            ]
        }
        let pendingRows: [[String: Any]] = pending.map {
            [
                "id": $0.id, "cron_trigger": $0.cronTrigger ?? NSNull(), "scheduled_time": $0.scheduledTime,
                "next_attempt_at": $0.nextAttemptAt, "tries": $0.tries, "webhook": $0.webhook,
                "comment": $0.comment ?? NSNull(), "locked_by": $0.lockedBy ?? NSNull(),
            ]
        }
        let data = try JSONSerialization.data(
            withJSONObject: ["cron_triggers": cronRows, "pending": pendingRows],
            options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}

struct CancelEventCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel-event",
        abstract: "Delete pending scheduled events (one-off events or cron ticks) before they are sent.")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "Event ids (as printed by schedule-event or `herald scheduled`).")
    var ids: [String]

    func run() async throws {
        try await reportingErrors {
            let config = try options.loadSourceConfig()
            let admin = ScheduledEventAdmin(admin: try EventAdmin(connection: PGConnection(url: config.database.url)))
            var problems = 0
            for id in ids {
                switch try admin.cancel(id) {
                case .cancelled(let id):
                    print("event \(id) cancelled")
                case .unknown(let text):
                    problems += 1
                    printError(EventID.notFoundMessage(text))
                case .notScheduled(let id):
                    problems += 1
                    printError("event \(id) is a captured change, not a scheduled event; use skip-event")
                case .notPending(let id, let status):
                    problems += 1
                    printError("event \(id) is \(status), not pending: nothing to cancel")
                case .busy(let id, let worker):
                    problems += 1
                    printError("event \(id) is being delivered by \(worker) right now")
                }
            }
            if problems > 0 { throw ExitCode.failure }
        }
    }
}
