import Synchronization
import Logging
import ServiceLifecycle

/// Services that join while the worker runs (the claimer and recorder of a Citus worker
/// node added to the cluster). Each runs as a child of this service, so it stops with this
/// service's place in the ServiceGroup's order: late claimers stop with the claimers, before
/// the deliverer; late recorders with the recorders, after it.
final class LateServices: Service, Sendable {
    private let services: AsyncStream<any Service>
    private let continuation: AsyncStream<any Service>.Continuation
    private let logger: Logger

    init(logger: Logger) {
        (services, continuation) = AsyncStream.makeStream()
        self.logger = logger
    }

    /// Starts `service` now; ignored once graceful shutdown has begun.
    func start(_ service: any Service) {
        continuation.yield(service)
    }

    func run() async throws {
        // Child tasks inherit the graceful shutdown this service receives, so each late
        // service shuts down as it would in the group; the loop ends so the group can end.
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                for await service in services {
                    group.addTask { [logger] in
                        do {
                            try await service.run()
                        } catch {
                            // The parts started late handle their own failures (a claimer
                            // or recorder retries its database); one that gives up is said.
                            logger.error("a part started while running stopped", metadata: ["error": "\(error)"])
                        }
                    }
                }
            } onGracefulShutdown: { [continuation] in
                continuation.finish()
            }
        }
    }
}

/// The recorders of sources that joined while running, by source, for the deliverer's
/// routing of outcomes (it asks only for sources the recorders made at the start lack).
final class LateRecorders: Sendable {
    private let recorders = Mutex<[String: Recorder]>([:])
    private let any = Atomic<Bool>(false)

    /// False until a source joins: the deliverer's routing then needs no lock and no lookup.
    var isEmpty: Bool { !any.load(ordering: .acquiring) }

    func add(_ recorder: Recorder, source: String) {
        recorders.withLock { $0[source] = recorder }
        any.store(true, ordering: .releasing)
    }

    func recorder(for source: String) -> Recorder? {
        recorders.withLock { $0[source] }
    }
}
