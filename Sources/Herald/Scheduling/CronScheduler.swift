import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Makes scheduled work due: at each cron tick it logs the tick's event (exactly once across
/// all workers, see ``ScheduledEventStore/logTicks(_:)``) and wakes the claimer, and it wakes
/// the claimer when a one-off event falls due, so neither waits for the poll interval.
/// After every worker was down it catches up from each trigger's newest logged tick: ticks
/// within the tolerance become events, older ones are recorded as missed.
///
/// One thread and one connection of its own, for the first source (where scheduled work
/// lives). Delivery itself is the engine's: claimer, deliverer and recorder as for any event.
final class CronScheduler: Service {
    private let config: HeraldConfig
    private let flow: FlowController
    private let metrics: HeraldMetrics
    private let logger: Logger
    private let source: String
    private let cronTriggers: [TriggerConfig]
    private let stopping = Mutex(false)
    private let thread = Mutex<OwnedThread?>(nil)
    let heartbeat = Heartbeat()

    /// How long tick history is kept (the newest tick of each trigger always stays).
    static let tickHistoryDays = 30

    /// `config` is scoped to the first source.
    init(config: HeraldConfig, flow: FlowController, metrics: HeraldMetrics, logger: Logger) {
        self.config = config
        self.flow = flow
        self.metrics = metrics
        self.logger = logger
        source = config.sources.first?.name ?? SourceConfig.defaultName
        cronTriggers = config.cronTriggers
    }

    func run() async throws {
        thread.withLock { $0 = OwnedThread(name: "herald-scheduler") { [self] in runLoop() } }
        try? await gracefulShutdown()
        stopping.withLock { $0 = true }
        await thread.withLock { $0 }?.join()
    }

    private var isStopping: Bool { stopping.withLock { $0 } }

    private func runLoop() {
        var connection: PGConnection?
        var backoff = ReconnectBackoff()
        var throttle = ErrorLogThrottle()
        var positions: [String: Position] = [:]
        // Each trigger's newest logged tick, read once per start (and again after a failed turn).
        var newestLogged: [String: Date]?
        var nextOneOff: Date?
        var nextOneOffRefresh = Date.distantPast
        var nextPrune = Date()
        while !isStopping {
            heartbeat.beat()
            do {
                let open = try connection ?? PGConnection(url: config.database.url)
                connection = open
                let store = ScheduledEventStore(connection: open)
                let logged = try newestLogged ?? store.lastTicks(cronTriggers.map(\.name))
                newestLogged = logged
                let now = Date()
                try logDueTicks(store, now: now, newestLogged: logged, positions: &positions)
                if now >= nextOneOffRefresh {
                    nextOneOff = try store.nextOneOffDue()
                    nextOneOffRefresh = now.addingTimeInterval(1)
                }
                if let due = nextOneOff, due <= now {
                    wakeClaimer()
                    nextOneOff = nil
                    nextOneOffRefresh = now
                }
                if now >= nextPrune {
                    let pruned = try store.pruneTicks(olderThanDays: Self.tickHistoryDays)
                    if pruned > 0 { logger.debug("pruned cron tick history", metadata: ["rows": "\(pruned)"]) }
                    nextPrune = now.addingTimeInterval(3600)
                }
                backoff.reset()
                throttle.reset()
                let wake = ([nextOneOffRefresh] + positions.values.map(\.next) + (nextOneOff.map { [$0] } ?? [])).min() ?? now
                sleep(until: wake)
            } catch {
                if let pgError = error as? PGError, pgError.isConnectionProblem || connection?.isOpen == false {
                    connection = nil
                }
                let wait = backoff.next()
                if let suppressed = throttle.admit("scheduler \(error)", now: .now) {
                    var metadata: Logger.Metadata = ["error": "\(error)", "retry_in_ms": "\(wait.milliseconds)"]
                    if suppressed > 0 { metadata["repeated"] = "\(suppressed)" }
                    logger.warning("scheduler cannot log cron ticks; retrying", metadata: metadata)
                }
                sleep(until: Date().addingTimeInterval(wait.seconds))
            }
        }
    }

    /// Per trigger, where the scheduler stands: every tick up to `cursor` is logged (by this
    /// worker or another), and `next` is the first tick after it.
    struct Position {
        var cursor: Date
        var next: Date
    }

    /// Logs every tick that fell due since the last turn — on the first turn after a start,
    /// since the trigger's newest logged tick (`newestLogged`; a trigger never logged starts
    /// now) — then advances the triggers' positions. Positions move only once the ticks are
    /// written, so a failed write is tried again on the next turn.
    private func logDueTicks(
        _ store: ScheduledEventStore, now: Date, newestLogged: [String: Date], positions: inout [String: Position]
    ) throws(PGError) {
        var writes: [ScheduledEventStore.TickWrite] = []
        var plans: [String: CronTickPlan] = [:]
        for trigger in cronTriggers {
            guard let scheduled = trigger.schedule, let schedule = scheduled.cronSchedule else { continue }
            let cursor: Date?
            if let position = positions[trigger.name] {
                guard position.next <= now else { continue }
                cursor = position.cursor
            } else {
                cursor = newestLogged[trigger.name]
            }
            let plan = CronTickPlan.plan(
                schedule: schedule, after: cursor, now: now, toleranceSeconds: scheduled.toleranceSeconds)
            plans[trigger.name] = plan
            writes += plan.created.map { .init(trigger: trigger.name, time: $0, missed: false) }
            writes += plan.missed.map { .init(trigger: trigger.name, time: $0, missed: true) }
        }
        let (created, missed) = try store.logTicks(writes)
        for (name, plan) in plans {
            positions[name] = Position(cursor: now, next: plan.next ?? .distantFuture)
            metrics.countCronTicks(trigger: name, outcome: "created", created[name] ?? 0)
            let missedCount = (missed[name] ?? 0) + plan.missedUnrecorded
            metrics.countCronTicks(trigger: name, outcome: "missed", missedCount)
            if missedCount > 0 {
                logger.warning(
                    "cron ticks missed: no worker ran within the trigger's tolerance; recorded, not delivered",
                    metadata: [
                        "trigger": "\(name)", "missed": "\(missedCount)",
                        "first": "\(plan.missed.first.map(Self.format) ?? "")",
                        "last": "\(plan.missed.last.map(Self.format) ?? "")",
                    ])
            }
        }
        if !created.isEmpty { wakeClaimer() }
    }

    private func wakeClaimer() {
        flow.notified(source: source)
        flow.wakeClaimer(source: source)
    }

    /// Sleeps until `date` in slices short enough to stop promptly and keep the heartbeat.
    private func sleep(until date: Date) {
        while !isStopping {
            heartbeat.beat()
            let left = date.timeIntervalSinceNow
            if left <= 0 { return }
            Thread.sleep(forTimeInterval: min(left, 0.25))
        }
    }

    static func format(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}
