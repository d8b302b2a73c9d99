import Foundation

/// What makes a trigger a scheduled one (Hasura's scheduled triggers): a cron trigger's
/// schedule, or the route that carries one-off scheduled events. Scheduled triggers share
/// the event log and the whole delivery engine with event triggers; only how their events
/// are made and what their body looks like differ.
public struct ScheduledDelivery: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A cron trigger: one event per tick of `schedule` (UTC).
        case cron(CronSchedule)
        /// One-off events (`herald schedule-event`, `herald.schedule_event(...)`): each event
        /// carries its own webhook, headers, retry settings and payload.
        case oneOff
    }

    public var kind: Kind
    /// The `payload` sent in the body, as JSON text (`null` when none is configured).
    public var payloadJSON = "null"
    /// A tick or one-off event first claimed more than this many seconds after its scheduled
    /// time is not sent but recorded as missed (Hasura's `tolerance_seconds`, default 6 h).
    public var toleranceSeconds = ScheduledDelivery.defaultToleranceSeconds
    /// Hasura's `include_in_metadata`: kept for a faithful round trip, changes nothing here.
    public var includeInMetadata = true
    /// The event's `scheduled_time` as sent (RFC 3339, UTC); set per event when it is claimed.
    public var scheduledTime: String?

    public static let defaultToleranceSeconds = 21600

    public init(kind: Kind) {
        self.kind = kind
    }

    public var cronSchedule: CronSchedule? {
        if case .cron(let schedule) = kind { return schedule }
        return nil
    }
}

extension TriggerConfig {
    /// The trigger name one-off scheduled events are logged and routed under. Not a valid
    /// trigger name, so it can never collide with a configured trigger.
    public static let oneOffName = "@scheduled"

    /// The pseudo trigger that routes one-off scheduled events: its webhook, headers and
    /// retry settings are replaced per event by what the event carries.
    static func oneOffRoute(timeoutSeconds: Int) -> TriggerConfig {
        var trigger = TriggerConfig(
            name: oneOffName, table: TableName(schema: "herald", name: "scheduled_events"),
            webhook: "http://one-off.scheduled.invalid/")
        trigger.schedule = ScheduledDelivery(kind: .oneOff)
        trigger.retry.timeoutSeconds = timeoutSeconds
        trigger.comment = "one-off scheduled events"
        return trigger
    }

    /// True for event triggers, which capture row changes from a table.
    public var isEventTrigger: Bool { schedule == nil }
    public var isCronTrigger: Bool { schedule?.cronSchedule != nil }
}

extension HeraldConfig {
    /// The triggers listed in queue statistics even without events: every configured one but
    /// the one-off route, which shows up once it has events.
    public var listedTriggerNames: [String] {
        triggers.map(\.name).filter { $0 != TriggerConfig.oneOffName }
    }

    /// The cron triggers (all belong to the first source, as Hasura keeps them beside its
    /// metadata rather than in a data source).
    public var cronTriggers: [TriggerConfig] { sources.first?.triggers.filter(\.isCronTrigger) ?? [] }
}
