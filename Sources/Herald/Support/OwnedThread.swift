import CMallocStats
import Foundation
import Synchronization

/// A thread Herald owns for blocking work (libpq, libcurl), so Swift's cooperative pool is
/// never blocked. Async code waits for it to finish with ``join()``.
final class OwnedThread: Sendable {
    private final class Completion: Sendable {
        let state = Mutex<(finished: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

        func finish() {
            let waiters = state.withLock { state in
                state.finished = true
                defer { state.waiters = [] }
                return state.waiters
            }
            waiters.forEach { $0.resume() }
        }
    }

    private let completion = Completion()

    init(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [completion] in
            // The kernel's name for the thread (15 bytes at most), which `top -H`, `ps -L`
            // and profilers show; Foundation's `name` stays inside the process.
            _ = herald_set_thread_name(name)
            body()
            completion.finish()
        }
        thread.name = name
        thread.start()
    }

    var isFinished: Bool { completion.state.withLock { $0.finished } }

    /// Suspends until the thread's body returned.
    func join() async {
        await withCheckedContinuation { continuation in
            let done = completion.state.withLock { state in
                if state.finished { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}

/// A self-pipe: lets one thread wake another that sleeps in `poll` on ``descriptor``.
final class WakePipe: Sendable {
    /// Poll this for readability.
    let descriptor: Int32
    private let writeEnd: Int32

    init() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) != 0 {
            fatalError("pipe failed: \(String(cString: strerror(errno)))")
        }
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        descriptor = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        close(descriptor)
        close(writeEnd)
    }

    func signal() {
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    /// Clears pending signals; returns whether there were any.
    @discardableResult
    func drain() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 64)
        var any = false
        while read(descriptor, &buffer, buffer.count) > 0 { any = true }
        return any
    }
}
