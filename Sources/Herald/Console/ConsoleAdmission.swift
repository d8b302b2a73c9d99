import Synchronization

/// Who may use one of the console's few database slots: a counter of free slots and a FIFO
/// of waiters, with no I/O and no clock, so every transition is unit-tested. ``ConsoleGate``
/// executes its answers.
struct ConsoleAdmission<Waiter>: ~Copyable {
    enum Arrival {
        /// A slot was free and is now the caller's.
        case admitted
        /// All slots are busy; the caller waits under `ticket` until a slot or its deadline.
        case queued(ticket: UInt64)
        /// Even the queue is full: answer 503 at once instead of holding the request.
        case refused
    }

    private(set) var free: Int
    private let maxWaiting: Int
    private var waiters: [(ticket: UInt64, waiter: Waiter)] = []
    private var nextTicket: UInt64 = 0

    init(slots: Int, maxWaiting: Int) {
        free = slots
        self.maxWaiting = maxWaiting
    }

    var waiting: Int { waiters.count }

    mutating func arrive(_ waiter: Waiter) -> Arrival {
        if free > 0 {
            free -= 1
            return .admitted
        }
        guard waiters.count < maxWaiting else { return .refused }
        nextTicket += 1
        waiters.append((nextTicket, waiter))
        return .queued(ticket: nextTicket)
    }

    /// A slot is given back: it goes to the longest waiter (returned, to be woken as
    /// admitted), or becomes free.
    mutating func release() -> Waiter? {
        guard !waiters.isEmpty else {
            free += 1
            return nil
        }
        return waiters.removeFirst().waiter
    }

    /// A waiter's deadline passed: returns it (to be woken as refused) unless a release
    /// already admitted it.
    mutating func expire(_ ticket: UInt64) -> Waiter? {
        guard let index = waiters.firstIndex(where: { $0.ticket == ticket }) else { return nil }
        return waiters.remove(at: index).waiter
    }
}

/// Bounds the console's concurrent database work to a few slots (`console.connections`);
/// a request beyond them waits up to ``maxWait`` for one, then is refused with ``Busy``.
final class ConsoleGate: Sendable {
    /// The console is at its bound: the page answers 503 with Retry-After.
    struct Busy: Error, CustomStringConvertible {
        var description: String { "the console is busy (all its database connections are in use); try again shortly" }
    }

    /// Long enough to ride out a burst of page loads, short enough that a browser gets an
    /// answer rather than a spinner.
    static let maxWait: Duration = .seconds(2)

    private let state: Mutex<ConsoleAdmission<CheckedContinuation<Bool, Never>>>
    private let maxWait: Duration

    init(slots: Int, maxWait: Duration = ConsoleGate.maxWait) {
        // Waiters beyond this many are refused at once: each holds an open request.
        state = Mutex(ConsoleAdmission(slots: slots, maxWaiting: 16 * slots))
        self.maxWait = maxWait
    }

    /// Runs `body` holding a slot, or throws ``Busy`` when none came within the wait.
    func withSlot<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        guard await acquire() else { throw Busy() }
        defer { release() }
        return try await body()
    }

    private func acquire() async -> Bool {
        await withCheckedContinuation { continuation in
            // Decided and queued under one lock, so a release in between cannot be missed.
            switch state.withLock({ $0.arrive(continuation) }) {
            case .admitted: continuation.resume(returning: true)
            case .refused: continuation.resume(returning: false)
            case .queued(let ticket):
                Task { [self] in
                    try? await Task.sleep(for: maxWait)
                    state.withLock { $0.expire(ticket) }?.resume(returning: false)
                }
            }
        }
    }

    private func release() {
        state.withLock { $0.release() }?.resume(returning: true)
    }
}
