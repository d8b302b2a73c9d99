import Logging
import ServiceLifecycle

/// The worker's side of systemd's notify protocol, as a service: READY=1 once the stats
/// endpoint listens, then WATCHDOG=1 and a STATUS= line every half watchdog interval, and
/// STOPPING=1 first thing at shutdown (it is the last service, so the first to stop).
///
/// The watchdog means "the worker is alive": it pings while the claim and delivery loops
/// turn, database or not, so an outage does not get a healthy worker killed (and its
/// unwritten outcomes lost). Whether it can work is readiness, said in STATUS= and /readyz.
struct SystemdService: Service {
    let worker: HeraldWorker
    let logger: Logger
    var notifier = SystemdNotifier()

    func run() async throws {
        await cancelWhenGracefulShutdown { [worker] in await worker.statsEndpointRunning.wait() }
        if worker.statsEndpointRunning.isOpen && !Task.isCancelled && !Task.isShuttingDownGracefully {
            notifier.ready()
            let interval = notifier.watchdogInterval ?? .seconds(5)
            try? await cancelWhenGracefulShutdown { [worker, notifier] in
                while !Task.isCancelled {
                    if worker.isAlive { notifier.watchdog() }
                    worker.stats.metrics.ready.record(worker.readiness.ready ? 1 : 0)
                    notifier.status(Self.status(worker))
                    try await Task.sleep(for: interval)
                }
            }
        }
        worker.beginStopping()
        notifier.stopping()
    }

    static func status(_ worker: HeraldWorker) -> String {
        let snapshot = worker.stats.current(inFlight: worker.inFlight)
        let (ready, reason) = worker.readiness
        return "delivered \(snapshot.delivered), retried \(snapshot.retried), failed \(snapshot.failed), "
            + "in flight \(snapshot.inFlight)\(ready ? "" : ", \(reason)")"
    }
}
