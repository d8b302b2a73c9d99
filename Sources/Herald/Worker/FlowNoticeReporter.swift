import Foundation
import Logging

/// Tells people what flow control did to a trigger: logs, metrics and alerts for breaker
/// transitions, disables and deferrals. Runs on whichever thread produced the notice, outside
/// flow control's lock; cheap (a log line, a counter, an enqueued alert).
struct FlowNoticeReporter: Sendable {
    let logger: Logger
    let metrics: HeraldMetrics
    /// Hands an alert to the dispatcher (no-op without `alerts:`).
    let alert: @Sendable (Alert) -> Void
    /// Each trigger's `circuit_breaker`, for the numbers in log lines and alerts.
    let breakers: [TriggerRef: CircuitBreakerConfig]

    private func openSeconds(_ trigger: TriggerRef) -> Int { breakers[trigger]?.openSeconds ?? 0 }

    func report(_ notices: [FlowController.Notice]) {
        // A gate shared by a trigger's Citus nodes reports each node's trigger (its state and
        // metric), in one batch: the line and the alert are said once per gate. The gate is
        // the configured source's trigger: another source's trigger of the same name is
        // another gate, and is said too.
        var said: Set<String> = []
        func first(_ what: String, _ trigger: TriggerRef) -> Bool {
            said.insert("\(what) \(CitusNode.configuredSource(of: trigger.source)) \(trigger.name)").inserted
        }
        for notice in notices {
            switch notice {
            case .circuit(let trigger, let transition):
                report(trigger, transition, announce: first("circuit", trigger))
            case .disabled(let trigger, let reason):
                metrics.trigger(trigger)?.enabled.record(0)
                guard first("disabled", trigger) else { continue }
                logger.warning(
                    "trigger disabled; its events stay pending until herald enable-trigger",
                    metadata: ["trigger": "\(trigger)", "reason": "\(reason)"])
                alert(.triggerDisabled(trigger: trigger.description, reason: reason, by: "worker"))
            case .release(let jobs, let reason):
                guard let trigger = jobs.first?.triggerRef else { continue }
                metrics.trigger(trigger)?.deferred[reason]?.increment(by: jobs.count)
                logger.debug(
                    "queued deliveries given back unsent",
                    metadata: ["trigger": "\(trigger)", "count": "\(jobs.count)", "reason": "\(reason.rawValue)"])
            case .rateLimited(let trigger):
                metrics.trigger(trigger)?.deferred[.rateLimit]?.increment()
            }
        }
    }

    private func report(_ trigger: TriggerRef, _ transition: CircuitBreaker.Transition, announce: Bool = true) {
        let gauge = metrics.trigger(trigger)?.circuitState
        switch transition {
        case .opened(let reading):
            gauge?.record(1)
            guard announce else { return }
            let (message, metadata) = Self.openedLine(trigger, reading, breakers[trigger])
            logger.warning(message, metadata: metadata)
            alert(.circuitOpened(
                trigger: trigger.description, failureRatio: (reading.ratio * 100).rounded() / 100, requests: reading.requests,
                openSeconds: openSeconds(trigger)))
        case .halfOpened:
            gauge?.record(2)
            guard announce else { return }
            logger.info("circuit breaker half-open: one probe request decides", metadata: ["trigger": "\(trigger)"])
        case .closed:
            gauge?.record(0)
            guard announce else { return }
            logger.info("circuit breaker closed: the receiver answers again", metadata: ["trigger": "\(trigger)"])
            alert(.circuitClosed(trigger: trigger.description, failureRatio: 0, requests: 0, openSeconds: openSeconds(trigger)))
        }
    }

    /// The line for an opened breaker, with the numbers that opened it: the window's
    /// failures against the configured ratio and minimum, or the half-open probe that failed
    /// (whose window is long empty, so its counts would read as "0 of 0 failed").
    static func openedLine(_ trigger: TriggerRef, _ reading: CircuitBreaker.Reading, _ config: CircuitBreakerConfig?)
        -> (Logger.Message, Logger.Metadata)
    {
        var metadata: Logger.Metadata = ["trigger": "\(trigger)"]
        let open = config.map { "\($0.openSeconds)s" } ?? "a while"
        if let config { metadata["open_seconds"] = "\(config.openSeconds)" }
        if reading.probeFailed {
            return ("circuit breaker opened again: the half-open probe failed; events wait \(open), tries untouched", metadata)
        }
        metadata["failures"] = "\(reading.failures)"
        metadata["requests"] = "\(reading.requests)"
        let ratio = (reading.ratio * 100).rounded() / 100
        guard let config else {
            return ("circuit breaker opened: \(reading.failures) of \(reading.requests) requests failed", metadata)
        }
        let text =
            "circuit breaker opened: \(reading.failures) of \(reading.requests) requests failed in the last"
            + " \(config.windowSeconds)s (ratio \(ratio), opens at \(config.failureRatio) with at least"
            + " \(config.minimumRequests) requests); events wait \(open), tries untouched"
        return ("\(text)", metadata)
    }

    /// Triggers this worker saw enabled or disabled in the database (by any worker or an
    /// operator); alerts for those come from where the change was made.
    func triggerStateChanged(source: String, enabled: [String], disabled: [String]) {
        for trigger in enabled { metrics.trigger(TriggerRef(source: source, name: trigger))?.enabled.record(1) }
        for trigger in disabled { metrics.trigger(TriggerRef(source: source, name: trigger))?.enabled.record(0) }
    }
}

extension DeliveryOutcome {
    /// The `herald.event.failed` alert for an event whose retries are exhausted (or that the
    /// receiver aborted).
    var failedAlert: Alert {
        let op = (try? JSONSerialization.jsonObject(with: Data(event.payload.utf8)) as? [String: Any])?["op"] as? String
        return .eventFailed(
            trigger: TriggerRef(source: event.source, name: event.triggerName).description,
            eventID: requestHeaders.first { $0.name == "webhook-id" }?.value ?? String(event.id),
            eventNumber: event.id, table: event.table, op: op ?? "", tries: attempt, lastStatus: statusCode,
            errorClass: errorClass, error: responseBody.map { "\(errorMessage ?? ""): \($0)" } ?? errorMessage,
            createdAt: event.createdAt, orderingKey: event.orderingKey, keyBlocked: decision == .blocked)
    }
}
