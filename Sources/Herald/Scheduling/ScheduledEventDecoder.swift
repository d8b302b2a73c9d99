import Foundation

/// Turns a claimed scheduled event (a cron tick or a one-off event) into the trigger its
/// attempt is sent with. A cron tick takes its trigger's settings and adds its scheduled
/// time; a one-off event carries its own webhook, headers, retry settings and payload.
/// Pure: the clock and the environment are passed in.
enum ScheduledEventDecoder {
    struct Decoded {
        var trigger: TriggerConfig
        /// Set when the attempt must be recorded as this failure instead of being sent.
        var refusal: (DeliveryErrorClass, String)?
    }

    /// - Parameters:
    ///   - route: the configured trigger the event was claimed for (a cron trigger, or the
    ///     one-off route).
    ///   - leaseSeconds: a one-off event's timeout is kept below the lease, so that no second
    ///     worker takes the event while the first still waits for its receiver.
    static func decode(
        _ event: ClaimedEvent, route: TriggerConfig, now: Date, environment: @autoclosure () -> [String: String],
        leaseSeconds: Int
    ) -> Decoded {
        var trigger = route
        guard var scheduled = route.schedule else { return Decoded(trigger: route) }
        // A cron tick stores only {"scheduled_time": "…"}: read it without a JSON parser, as
        // a thousand ticks fall due at once and are prepared one after another on the claimer.
        let object: [String: Any]?
        let scheduledText: String?
        if scheduled.cronSchedule != nil, let text = cronTickTime(event.payload) {
            object = nil
            scheduledText = text
        } else {
            object = (try? JSONSerialization.jsonObject(with: Data(event.payload.utf8))) as? [String: Any]
            scheduledText = object?["scheduled_time"] as? String
        }
        guard let scheduledText, let scheduledAt = parseTime(scheduledText) else {
            return Decoded(trigger: route, refusal: (.unsendable, "the stored scheduled event is malformed: \(event.payload.prefix(200))"))
        }
        scheduled.scheduledTime = scheduledText
        var refusal: (DeliveryErrorClass, String)?
        if case .oneOff = scheduled.kind {
            refusal = applyOneOff(
                object ?? [:], to: &trigger, scheduled: &scheduled, environment: environment(), leaseSeconds: leaseSeconds)
        }
        trigger.schedule = scheduled
        let late = now.timeIntervalSince(scheduledAt)
        if refusal == nil, event.tries == 0, !event.attemptedBefore, late > Double(scheduled.toleranceSeconds) {
            refusal = (
                .missed,
                "missed: first claimed \(Int(late)) s after its scheduled time \(scheduledText), beyond tolerance_seconds \(scheduled.toleranceSeconds)"
            )
        }
        return Decoded(trigger: trigger, refusal: refusal)
    }

    /// A one-off event's own delivery settings (as `herald.schedule_event` stored them).
    private static func applyOneOff(
        _ object: [String: Any], to trigger: inout TriggerConfig, scheduled: inout ScheduledDelivery,
        environment: [String: String], leaseSeconds: Int
    ) -> (DeliveryErrorClass, String)? {
        trigger.webhook = object["webhook"] as? String ?? ""
        trigger.webhookSource = .literal
        trigger.comment = object["comment"] as? String
        scheduled.payloadJSON = jsonText(object["payload"])
        let retry = object["retry_conf"] as? [String: Any] ?? [:]
        func number(_ key: String) -> Int? { (retry[key] as? NSNumber)?.intValue }
        trigger.retry = RetryConfig(
            numRetries: number("num_retries") ?? 0, intervalSeconds: number("retry_interval_seconds") ?? 10,
            timeoutSeconds: min(max(number("timeout_seconds") ?? 60, 1), max(leaseSeconds - 1, 1)))
        scheduled.toleranceSeconds = number("tolerance_seconds") ?? ScheduledDelivery.defaultToleranceSeconds
        trigger.headers = []
        for case let header as [String: Any] in object["headers"] as? [Any] ?? [] {
            let name = header["name"] as? String ?? ""
            if let value = header["value"] as? String {
                trigger.headers.append(HeaderConfig(name: name, value: value, source: .literal))
            } else if let variable = header["value_from_env"] as? String {
                guard let value = environment[variable], !value.isEmpty else {
                    return (.unsendable, "header \(name): environment variable \(variable) is not set")
                }
                trigger.headers.append(HeaderConfig(name: name, value: value, source: .environment(variable)))
            }
            if let problem = HeaderValidation.problem(name: name, value: trigger.headers.last?.value ?? "", owner: "scheduled event") {
                return (.unsendable, problem)
            }
        }
        guard let url = URLComponents(string: trigger.webhook), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
            url.host?.isEmpty == false
        else {
            return (.unsendable, "the webhook is not an http:// or https:// URL with a host")
        }
        return nil
    }

    static func jsonText(_ value: Any?) -> String {
        guard let value, !(value is NSNull) else { return "null" }
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .withoutEscapingSlashes])
        else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    /// The time of a tick's stored payload, exactly as `herald.cron_ticks` wrote it
    /// (`{"scheduled_time": "…"}`, jsonb's text form); nil for anything else.
    static func cronTickTime(_ payload: String) -> String? {
        let prefix = #"{"scheduled_time": ""#
        guard payload.hasPrefix(prefix), payload.hasSuffix(#""}"#) else { return nil }
        let text = payload.dropFirst(prefix.count).dropLast(2)
        return text.contains(where: { $0 == "\"" || $0 == "\\" }) ? nil : String(text)
    }

    /// RFC 3339 in UTC as ``herald.scheduled_time_text`` writes it
    /// (`2026-12-03T22:00:00Z`, `2026-12-03T22:00:00.25Z`), computed by hand: formatters cost
    /// tens of microseconds each on Linux, per event.
    static func parseTime(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z"), bytes[4] == UInt8(ascii: "-"),
            bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"),
            bytes[16] == UInt8(ascii: ":")
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var fraction = 0.0
        if bytes.count > 20 {
            guard bytes[19] == UInt8(ascii: "."), let digits = number(20..<(bytes.count - 1)) else { return nil }
            fraction = Double(digits) / pow(10, Double(bytes.count - 21))
        } else if bytes[19] != UInt8(ascii: "Z") {
            return nil
        }
        // Days from 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146097 + dayOfEra - 719468
        let seconds = Double(days * 86400 + hour * 3600 + minute * 60 + second) + fraction
        return Date(timeIntervalSince1970: seconds)
    }
}
