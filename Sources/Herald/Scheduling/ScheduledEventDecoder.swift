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
        _ event: ClaimedEvent, route: TriggerConfig, now: Date, environment: [String: String], leaseSeconds: Int
    ) -> Decoded {
        var trigger = route
        guard var scheduled = route.schedule else { return Decoded(trigger: route) }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(event.payload.utf8))) as? [String: Any],
            let scheduledText = object["scheduled_time"] as? String, let scheduledAt = parseTime(scheduledText)
        else {
            return Decoded(trigger: route, refusal: (.unsendable, "the stored scheduled event is malformed: \(event.payload.prefix(200))"))
        }
        scheduled.scheduledTime = scheduledText
        var refusal: (DeliveryErrorClass, String)?
        if case .oneOff = scheduled.kind {
            refusal = applyOneOff(object, to: &trigger, scheduled: &scheduled, environment: environment, leaseSeconds: leaseSeconds)
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

    /// RFC 3339 in UTC, with or without fractional seconds (``herald.scheduled_time_text``).
    static func parseTime(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        if let date = plain.date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }
}
