import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Writes delivery outcomes in group commits on a thread and connection of its own: one
/// UPDATE and one INSERT per flush, flushed when `recorder_flush_size` outcomes wait or the
/// oldest has waited `recorder_flush_interval_ms`.
///
/// - A flush that fails because the connection is gone is retried with backoff on a new
///   connection; outcomes are never dropped for that while the worker runs.
/// - The outcome of an event deleted while its delivery was in flight is dropped with a
///   warning naming the event (``EventStore/record(_:workerID:)`` finds it missing).
/// - A flush that fails for any other reason is poisoned by one row: it is split and written
///   row by row, and a row that still cannot be written is dropped with a warning naming its
///   event, so one bad row never holds back the rest.
/// - At the end of the worker it releases every lease the worker still holds.
public final class Recorder: Service {
    private struct State: ~Copyable {
        var pending: [DeliveryOutcome] = []
        var oldest: ContinuousClock.Instant?
        var stopping = false
        /// An outcome that releases a key waits: flush without waiting for the interval.
        var releasesKey = false
    }

    private let state = Mutex(State())
    private let condition = NSCondition()
    private let databaseURL: String
    /// The source whose database this recorder writes.
    let source: String
    private let workerID: String
    private let settings: WorkerSettings
    private let flow: FlowController
    private let shutdownDeadline: ShutdownDeadline
    private let logger: Logger
    private let stats: WorkerStats
    private let thread = Mutex<OwnedThread?>(nil)
    /// Hears the outcomes that failed an event for good, once they are written.
    private let onFailedEvents: @Sendable ([DeliveryOutcome]) -> Void

    public init(
        databaseURL: String, source: String = SourceConfig.defaultName, workerID: String, settings: WorkerSettings,
        flow: FlowController,
        shutdownDeadline: ShutdownDeadline, logger: Logger, stats: WorkerStats,
        onFailedEvents: @escaping @Sendable ([DeliveryOutcome]) -> Void = { _ in }
    ) {
        self.onFailedEvents = onFailedEvents
        self.databaseURL = databaseURL
        self.source = source
        self.workerID = workerID
        self.settings = settings
        self.flow = flow
        self.shutdownDeadline = shutdownDeadline
        self.logger = logger
        self.stats = stats
    }

    /// The most outcomes written in one flush.
    static func maxBatch(_ settings: WorkerSettings) -> Int { settings.recorderFlushSize * 16 }

    /// Above this backlog nothing more is claimed, so a slow database bounds memory.
    public static func backlogLimit(_ settings: WorkerSettings) -> Int { maxBatch(settings) * 2 }

    /// Writes outcomes until graceful shutdown, then what is left (until the worker's
    /// shutdown deadline), then releases this worker's leases.
    public func run() async throws {
        thread.withLock { $0 = OwnedThread(name: "herald-recorder") { [self] in runLoop() } }
        try? await gracefulShutdown()
        _ = shutdownDeadline.start(grace: .seconds(settings.shutdownGraceSeconds))
        state.withLock { $0.stopping = true }
        wake()
        await thread.withLock { $0 }?.join()
    }

    public func enqueue(_ outcomes: [DeliveryOutcome]) {
        guard !outcomes.isEmpty else { return }
        // The next event of an ordered key is claimed only once its head's outcome is
        // written, so such outcomes are flushed as soon as the recorder is free: the group
        // commit then forms from whatever arrives while the previous flush runs, instead of
        // every key waiting out the flush interval on each event.
        let releasesKey = outcomes.contains { Self.releasesKey($0) }
        let count = state.withLock { state in
            if state.pending.isEmpty { state.oldest = .now }
            state.pending += outcomes
            if releasesKey { state.releasesKey = true }
            return state.pending.count
        }
        if count == outcomes.count || count >= settings.recorderFlushSize || releasesKey { wake() }
    }

    /// A keyed event leaving pending: the next event of its key becomes its head.
    static func releasesKey(_ outcome: DeliveryOutcome) -> Bool {
        outcome.event.orderingKey != nil && (outcome.decision == .delivered || outcome.decision == .failed)
    }

    private func wake() {
        condition.lock()
        condition.signal()
        condition.unlock()
    }

    private func runLoop() {
        var connection: PGConnection?
        var backoff = ReconnectBackoff()
        var throttle = ErrorLogThrottle()
        let interval = Duration.milliseconds(settings.recorderFlushIntervalMilliseconds)
        while true {
            let (batch, stopping) = nextBatch(interval: interval)
            if batch.isEmpty {
                if stopping { break }
                continue
            }
            do {
                let open = try connection.flatMap { $0.isOpen ? $0 : nil } ?? openConnection()
                connection = open
                let started = ContinuousClock.now
                try write(batch, on: open)
                stats.recordFlush(size: batch.count, seconds: (ContinuousClock.now - started).seconds)
                backoff.reset()
                throttle.reset()
            } catch {
                connection = nil
                stats.recordFlush(size: batch.count, seconds: nil)
                let unwritten = (error as? RecorderPartialWrite)?.remaining ?? batch
                state.withLock { state in
                    state.pending.insert(contentsOf: unwritten, at: 0)
                    if state.oldest == nil { state.oldest = .now }
                }
                if stopping && shutdownDeadline.hasPassed {
                    logger.error(
                        "could not record outcomes before shutdown; these events will be delivered again after their lease",
                        metadata: ["count": "\(state.withLock { $0.pending.count })", "error": "\(error)"])
                    break
                }
                let wait = min(backoff.next(), shutdownDeadline.remaining ?? .seconds(60))
                if let suppressed = throttle.admit("\(error)", now: .now) {
                    logger.warning(
                        "recording outcomes failed; retrying",
                        metadata: [
                            "count": "\(batch.count)", "error": "\(error)", "retry_in_ms": "\(wait.milliseconds)",
                            "repeated": "\(suppressed)",
                        ])
                }
                Thread.sleep(forTimeInterval: max(wait.seconds, 0.01))
            }
        }
        releaseLeases(connection)
    }

    private func openConnection() throws -> PGConnection {
        let connection = try PGConnection(url: databaseURL)
        try EventStore(connection: connection).prepareWorkerSession(.recorder)
        return connection
    }

    /// One group commit; when a non-connection error poisons it, row by row. Throws only
    /// connection problems (the caller retries the whole batch, which is idempotent for rows
    /// already written: their lease token no longer matches, only a duplicate invocation row
    /// can result).
    private func write(_ batch: [DeliveryOutcome], on connection: PGConnection) throws {
        let store = EventStore(connection: connection)
        do {
            report(batch, try store.record(batch, workerID: workerID))
        } catch let error as PGError where !error.isConnectionProblem && connection.isOpen {
            logger.warning(
                "group commit of outcomes failed; writing them one by one",
                metadata: ["count": "\(batch.count)", "error": "\(error)"])
            for (index, outcome) in batch.enumerated() {
                do {
                    report([outcome], try store.record([outcome], workerID: workerID))
                } catch let rowError as PGError where !rowError.isConnectionProblem && connection.isOpen {
                    stats.recordDroppedOutcome()
                    logger.warning(
                        "outcome dropped: it cannot be written; the event is delivered again after its lease",
                        metadata: ["event": "\(outcome.event.id)", "trigger": "\(outcome.event.triggerName)",
                                   "error": "\(rowError)"])
                } catch {
                    // The connection went away part way: what was written is settled, the
                    // rest goes back to the batch retry.
                    flow.recorded(index, source: source)
                    throw RecorderPartialWrite(remaining: Array(batch[index...]), underlying: error)
                }
            }
        }
        flow.recorded(batch.count, source: source)
        // A keyed head that left pending lets the next event of its key be claimed now.
        let released = Set(batch.lazy.filter(Self.releasesKey).map(\.event.triggerName))
        if !released.isEmpty { flow.keysReleased(triggers: released, source: source) }
        let failed = batch.filter { $0.decision.isTerminalFailure }
        if !failed.isEmpty { onFailedEvents(failed) }
    }

    /// Outcomes whose lease was taken over (expired and re-claimed, by this or another
    /// worker) are kept as invocation rows but change nothing; those of events deleted while
    /// their delivery was in flight are dropped. Say so once per flush.
    private func report(_ batch: [DeliveryOutcome], _ recorded: EventStore.Recorded) {
        let applied = recorded.applied
        guard applied.count < batch.count else { return }
        let missing = recorded.missingEvents
        if !missing.isEmpty {
            for _ in missing { stats.recordDroppedOutcome() }
            logger.warning(
                "outcome dropped: event no longer exists (deleted while its delivery was in flight)",
                metadata: ["count": "\(missing.count)", "events": "\(missing.sorted().prefix(10).map(String.init).joined(separator: ","))"])
        }
        let stale = batch.filter { !applied.contains($0.event.id) && !missing.contains($0.event.id) }.map(\.event.id)
        guard !stale.isEmpty else { return }
        logger.warning(
            "outcomes arrived after their lease had ended; recorded as invocations only",
            metadata: ["count": "\(stale.count)", "events": "\(stale.prefix(10).map(String.init).joined(separator: ","))"])
    }

    /// Gives back every lease this worker still holds, so other workers (or the next run)
    /// take those events at once instead of after the lease.
    private func releaseLeases(_ connection: PGConnection?) {
        do {
            let open = try connection.flatMap { $0.isOpen ? $0 : nil } ?? openConnection()
            let released = try EventStore(connection: open).releaseLeases(workerID: workerID)
            logger.info("released leases", metadata: ["count": "\(released)"])
        } catch {
            logger.warning(
                "could not release leases; those events are due again when their leases end",
                metadata: ["error": "\(error)"])
        }
    }

    /// Waits until a flush is due and takes up to one flush's worth of outcomes.
    private func nextBatch(interval: Duration) -> ([DeliveryOutcome], Bool) {
        condition.lock()
        defer { condition.unlock() }
        while true {
            let (ready, stopping, waitUntil) = state.withLock {
                state -> (Bool, Bool, ContinuousClock.Instant?) in
                let due = state.oldest.map { $0 + interval }
                let ready =
                    state.pending.count >= settings.recorderFlushSize || state.stopping || state.releasesKey
                    || (due.map { ContinuousClock.now >= $0 } ?? false)
                return (ready, state.stopping, due)
            }
            if ready {
                let batch = state.withLock { state in
                    // Take everything waiting (up to a bound): when the database is the slow
                    // part, larger group commits are how the recorder keeps up.
                    let batch = Array(state.pending.prefix(Self.maxBatch(settings)))
                    state.pending.removeFirst(batch.count)
                    state.oldest = state.pending.isEmpty ? nil : .now
                    state.releasesKey = state.pending.contains { Self.releasesKey($0) }
                    return batch
                }
                return (batch, stopping)
            }
            let timeout = waitUntil.map { max(.zero, $0 - ContinuousClock.now) } ?? .seconds(1)
            _ = condition.wait(until: Date().addingTimeInterval(timeout.seconds))
        }
    }
}

/// A row-by-row write lost its connection part way; `remaining` were not written.
struct RecorderPartialWrite: Error, CustomStringConvertible {
    var remaining: [DeliveryOutcome]
    var underlying: any Error
    var description: String { "\(underlying)" }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Int { Int(seconds * 1000) }
}
