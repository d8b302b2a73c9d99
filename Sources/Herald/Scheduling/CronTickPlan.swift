import Foundation

/// Which ticks of one cron trigger to log at `now`: every tick after the last one logged and
/// not after `now`; those within the tolerance become events, older ones are recorded as
/// missed (Hasura's semantics after every worker was down). Pure, so the arithmetic is
/// tested without a clock or a database.
struct CronTickPlan: Equatable {
    var created: [Date] = []
    var missed: [Date] = []
    /// Missed ticks beyond `limit`, counted but not recorded one by one (a trigger every
    /// minute down for months would otherwise write hundreds of thousands of rows at once).
    var missedUnrecorded = 0
    /// The first tick after `now`: when to look again.
    var next: Date?

    /// The most missed ticks recorded per trigger in one plan; the newest are kept.
    static let missedLimit = 10_000

    /// - Parameters:
    ///   - last: the newest tick already logged (created or missed), or nil for a trigger
    ///     never seen: it starts at its first tick after `now`, as a new Hasura trigger does.
    static func plan(
        schedule: CronSchedule, after last: Date?, now: Date, toleranceSeconds: Int, limit: Int = missedLimit
    ) -> CronTickPlan {
        var plan = CronTickPlan()
        guard var cursor = last else {
            plan.next = schedule.next(after: now)
            return plan
        }
        let oldestOnTime = now.addingTimeInterval(-Double(toleranceSeconds))
        while let tick = schedule.next(after: cursor), tick <= now {
            if tick < oldestOnTime {
                plan.missed.append(tick)
                if plan.missed.count > limit {
                    plan.missed.removeFirst(plan.missed.count - limit)
                    plan.missedUnrecorded += 1
                }
            } else {
                plan.created.append(tick)
            }
            cursor = tick
        }
        plan.next = schedule.next(after: max(cursor, now))
        return plan
    }
}
