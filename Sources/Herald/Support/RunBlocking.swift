/// Runs blocking work (a libpq call) on a fresh thread Herald owns and awaits its result,
/// for the rare one-off calls at start and stop; steady-state work has threads of its own.
func runBlocking<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    let box = ResultBox<T>()
    let thread = OwnedThread(name: name) { box.set(Result { try body() }) }
    await thread.join()
    return try box.get()
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
    // Written once by the thread before it finishes, read once after join: ordered by join.
    private var result: Result<T, any Error>?

    func set(_ result: Result<T, any Error>) { self.result = result }

    func get() throws -> T {
        guard let result else { throw CancellationError() }
        return try result.get()
    }
}
