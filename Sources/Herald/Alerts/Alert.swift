import Foundation

/// One operator alert: a Standard Webhooks event type (`herald.event.failed`, …) and its flat
/// data. Sent by ``AlertDispatcher`` as `{"type": …, "timestamp": …, "data": {…}}`.
public struct Alert: Sendable, Equatable {
    public var type: String
    public var data: [String: AlertValue]

    public init(type: String, data: [String: AlertValue]) {
        self.type = type
        self.data = data
    }

    /// What a digest lists for a folded alert: the event id, else the trigger.
    var digestKey: String? {
        if case .string(let id)? = data["event_id"] { return id }
        if case .string(let trigger)? = data["trigger"] { return trigger }
        return nil
    }

    var trigger: String? {
        if case .string(let trigger)? = data["trigger"] { return trigger }
        return nil
    }
}

/// A JSON value inside an alert's data. Flat on purpose: receivers (chat bridges, pagers)
/// template on top-level keys.
public enum AlertValue: Sendable, Equatable {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case null
    case strings([String])

    /// The value as JSON text.
    var json: String {
        switch self {
        case .string(let text): DeliveryRequest.json(text)
        case .int(let value): String(value)
        // JSON has no NaN or infinity.
        case .double(let value): value.isFinite ? "\(value)" : "null"
        case .bool(let value): value ? "true" : "false"
        case .null: "null"
        case .strings(let texts): "[" + texts.map(DeliveryRequest.json).joined(separator: ",") + "]"
        }
    }
}

extension AlertValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension AlertValue {
    /// `.string`, or `.null` for nil.
    init(_ value: String?) { self = value.map(AlertValue.string) ?? .null }
    /// `.int`, or `.null` for nil.
    init(_ value: Int?) { self = value.map(AlertValue.int) ?? .null }
}

/// The alert kinds Herald sends, each with its data keys in one place.
extension Alert {
    public static let eventFailedType = "herald.event.failed"
    public static let triggerDisabledType = "herald.trigger.disabled"
    public static let triggerEnabledType = "herald.trigger.enabled"
    public static let circuitOpenedType = "herald.circuit.opened"
    public static let circuitClosedType = "herald.circuit.closed"
    public static let digestType = "herald.digest"

    /// The longest error excerpt an alert carries; the invocation log has the rest.
    public static let errorExcerptLimit = 500

    /// An event left `pending` for `failed`: retries exhausted, or aborted by the receiver.
    /// - Parameters:
    ///   - eventID: the payload id (the UUID receivers see as `webhook-id`).
    ///   - eventNumber: the number in `herald.event_log.id`, for `herald redeliver-event`.
    ///   - lastStatus: the last HTTP status, when a response arrived.
    ///   - errorClass: the last error class (`http`, `timeout`, `connection`, …).
    ///   - error: the last error message or response body; cut to ``errorExcerptLimit``.
    ///   - createdAt: when the row change was captured (RFC 3339, as in the payload).
    ///   - orderingKey: the event's key when its trigger delivers in order per key.
    ///   - keyBlocked: the event stays pending and holds its key (`on_failure: block`)
    ///     until `herald redeliver-event` or `herald skip-event`.
    public static func eventFailed(
        trigger: String, eventID: String, eventNumber: Int64, table: TableName, op: String, tries: Int,
        lastStatus: Int?, errorClass: String?, error: String?, createdAt: String, orderingKey: String? = nil,
        keyBlocked: Bool = false
    ) -> Alert {
        var data: [String: AlertValue] = [
            "trigger": .string(trigger), "event_id": .string(eventID), "event_number": .int(Int(eventNumber)),
            "table": .string(table.description), "op": .string(op), "tries": .int(tries),
            "last_status": AlertValue(lastStatus), "error_class": AlertValue(errorClass),
            "error": AlertValue(error.map { String($0.prefix(errorExcerptLimit)) }), "created_at": .string(createdAt),
        ]
        if let orderingKey {
            data["ordering_key"] = .string(orderingKey)
            data["key_blocked"] = .bool(keyBlocked)
        }
        return Alert(type: eventFailedType, data: data)
    }

    /// A trigger stopped being delivered: by `herald disable-trigger`, a receiver's 410 or
    /// `webhook-delivery: disable`, or `disable_after`.
    /// - Parameter by: who or what disabled it (`cli:<user>`, `receiver`, `disable_after`, …).
    public static func triggerDisabled(trigger: String, reason: String, by: String) -> Alert {
        Alert(type: triggerDisabledType, data: ["trigger": .string(trigger), "reason": .string(reason), "by": .string(by)])
    }

    public static func triggerEnabled(trigger: String, reason: String, by: String) -> Alert {
        Alert(type: triggerEnabledType, data: ["trigger": .string(trigger), "reason": .string(reason), "by": .string(by)])
    }

    /// A trigger's circuit breaker opened: its events wait `openSeconds` before a probe.
    public static func circuitOpened(trigger: String, failureRatio: Double, requests: Int, openSeconds: Int) -> Alert {
        circuit(circuitOpenedType, trigger: trigger, failureRatio: failureRatio, requests: requests, openSeconds: openSeconds)
    }

    /// A probe succeeded and the trigger's events flow again.
    public static func circuitClosed(trigger: String, failureRatio: Double, requests: Int, openSeconds: Int) -> Alert {
        circuit(circuitClosedType, trigger: trigger, failureRatio: failureRatio, requests: requests, openSeconds: openSeconds)
    }

    private static func circuit(
        _ type: String, trigger: String, failureRatio: Double, requests: Int, openSeconds: Int
    ) -> Alert {
        Alert(
            type: type,
            data: [
                "trigger": .string(trigger), "failure_ratio": .double(failureRatio), "requests": .int(requests),
                "open_sec": .int(openSeconds),
            ])
    }
}
