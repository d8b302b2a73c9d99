import Logging
import Synchronization

/// One warning per event that failed for good (retries exhausted or aborted by the
/// receiver), so an operator reading the log sees it without the console. A receiver that
/// is down fails events by the thousand: at most one line per trigger per ``interval``, and
/// the next line says how many were left out.
final class FinalFailureLog: Sendable {
    static let interval = Duration.seconds(10)

    private let logger: Logger
    private let throttle = Mutex(ErrorLogThrottle(interval: FinalFailureLog.interval))

    init(logger: Logger) {
        self.logger = logger
    }

    /// Logs what ``lines(_:now:)`` admits.
    func report(_ outcomes: [DeliveryOutcome], now: ContinuousClock.Instant) {
        for metadata in lines(outcomes, now: now) {
            logger.warning("event failed for good; it stays failed until herald redeliver-event", metadata: metadata)
        }
    }

    /// The metadata of each line to log for `outcomes`, throttled per trigger.
    func lines(_ outcomes: [DeliveryOutcome], now: ContinuousClock.Instant) -> [Logger.Metadata] {
        outcomes.compactMap { outcome in
            let trigger = TriggerRef(source: outcome.event.source, name: outcome.event.triggerName).description
            guard let skipped = throttle.withLock({ $0.admit(trigger, now: now) }) else { return nil }
            var metadata: Logger.Metadata = [
                "trigger": "\(trigger)", "event": "\(outcome.event.id)", "attempts": "\(outcome.attempt)",
                "last_result": "\(outcome.statusCode.map { "HTTP \($0)" } ?? outcome.errorClass ?? "error")",
            ]
            if let id = outcome.requestHeaders.first(where: { $0.name == "webhook-id" })?.value {
                metadata["webhook_id"] = "\(id)"
            }
            if skipped > 0 { metadata["more_failed_not_logged"] = "\(skipped)" }
            return metadata
        }
    }
}
