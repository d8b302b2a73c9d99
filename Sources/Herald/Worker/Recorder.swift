import Foundation
import Logging
import Synchronization

/// Writes delivery outcomes in group commits on a thread and connection of its own: one
/// UPDATE and one INSERT per flush, flushed when `recorder_flush_size` outcomes wait or the
/// oldest has waited `recorder_flush_interval_ms`. A failed flush is retried with backoff on
/// a new connection; outcomes are never dropped while the worker runs.
public final class Recorder: Sendable {
    private struct State: ~Copyable {
        var pending: [DeliveryOutcome] = []
        var oldest: ContinuousClock.Instant?
        var stopping = false
        var stopDeadline: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let condition = NSCondition()
    private let databaseURL: String
    private let workerID: String
    private let settings: WorkerSettings
    private let logger: Logger
    private let stats: WorkerStats
    private let thread = Mutex<OwnedThread?>(nil)

    public init(databaseURL: String, workerID: String, settings: WorkerSettings, logger: Logger, stats: WorkerStats) {
        self.databaseURL = databaseURL
        self.workerID = workerID
        self.settings = settings
        self.logger = logger
        self.stats = stats
    }

    public func start() {
        thread.withLock { $0 = OwnedThread(name: "herald-recorder") { [self] in runLoop() } }
    }

    public func enqueue(_ outcome: DeliveryOutcome) {
        let count = state.withLock { state in
            if state.pending.isEmpty { state.oldest = .now }
            state.pending.append(outcome)
            return state.pending.count
        }
        if count == 1 || count >= settings.recorderFlushSize { wake() }
    }

    public var backlog: Int { state.withLock { $0.pending.count } }

    /// The most outcomes written in one flush.
    var maxBatch: Int { settings.recorderFlushSize * 16 }

    /// Above this backlog the claimer stops claiming, so a slow database bounds memory.
    public var backlogLimit: Int { maxBatch * 2 }

    /// Flushes what is left and stops. Gives up after `timeout` if the database stays
    /// unreachable: those events keep their leases and are delivered again after them.
    public func shutdown(timeout: Duration) async {
        state.withLock {
            $0.stopping = true
            $0.stopDeadline = .now + timeout
        }
        wake()
        await thread.withLock { $0 }?.join()
    }

    private func wake() {
        condition.lock()
        condition.signal()
        condition.unlock()
    }

    private func runLoop() {
        var connection: PGConnection?
        var backoff = ReconnectBackoff()
        let interval = Duration.milliseconds(settings.recorderFlushIntervalMilliseconds)
        while true {
            let (batch, stopping, deadline) = nextBatch(interval: interval)
            if batch.isEmpty {
                if stopping { return }
                continue
            }
            do {
                let open: PGConnection
                if let existing = connection, existing.isOpen {
                    open = existing
                } else {
                    open = try PGConnection(url: databaseURL)
                    try EventStore(connection: open).useAsynchronousCommit()
                }
                connection = open
                let started = ContinuousClock.now
                try EventStore(connection: open).record(batch, workerID: workerID)
                stats.recordFlush(size: batch.count, seconds: (ContinuousClock.now - started).seconds)
                backoff.reset()
                logger.trace(
                    "recorded outcomes",
                    metadata: ["count": "\(batch.count)", "ms": "\((ContinuousClock.now - started).milliseconds)"])
            } catch {
                connection = nil
                stats.recordFlush(size: batch.count, seconds: nil)
                state.withLock { state in
                    state.pending.insert(contentsOf: batch, at: 0)
                    if state.oldest == nil { state.oldest = .now }
                }
                if stopping, let deadline, ContinuousClock.now >= deadline {
                    logger.error(
                        "could not record outcomes before shutdown; these events will be delivered again after their lease",
                        metadata: ["count": "\(backlog)", "error": "\(error)"])
                    return
                }
                let wait = backoff.next()
                logger.warning(
                    "recording outcomes failed; retrying",
                    metadata: ["count": "\(batch.count)", "error": "\(error)", "retry_in_ms": "\(wait.milliseconds)"])
                Thread.sleep(forTimeInterval: wait.seconds)
            }
        }
    }

    /// Waits until a flush is due and takes up to one flush's worth of outcomes.
    private func nextBatch(interval: Duration) -> ([DeliveryOutcome], Bool, ContinuousClock.Instant?) {
        condition.lock()
        defer { condition.unlock() }
        while true {
            let (ready, stopping, deadline, waitUntil) = state.withLock {
                state -> (Bool, Bool, ContinuousClock.Instant?, ContinuousClock.Instant?) in
                let due = state.oldest.map { $0 + interval }
                let ready =
                    state.pending.count >= settings.recorderFlushSize || state.stopping
                    || (due.map { ContinuousClock.now >= $0 } ?? false)
                return (ready, state.stopping, state.stopDeadline, due)
            }
            if ready {
                let batch = state.withLock { state in
                    // Take everything waiting (up to a bound): when the database is the slow
                    // part, larger group commits are how the recorder keeps up.
                    let batch = Array(state.pending.prefix(maxBatch))
                    state.pending.removeFirst(batch.count)
                    state.oldest = state.pending.isEmpty ? nil : .now
                    return batch
                }
                return (batch, stopping, deadline)
            }
            let timeout = waitUntil.map { max(.zero, $0 - ContinuousClock.now) } ?? .seconds(1)
            _ = condition.wait(until: Date().addingTimeInterval(timeout.seconds))
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Int { Int(seconds * 1000) }
}
