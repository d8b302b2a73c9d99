import Logging
import ServiceLifecycle

/// Follows a Citus cluster's worker nodes while the worker runs, so that `citus_add_node`
/// and `citus_remove_node` need no restart:
/// - a node added to the cluster gets Herald's schema (before any shard, and so any capture
///   trigger, can move there, or writes to it would fail) and then its claimer, recorder and
///   periodic jobs, as the nodes found at the start have;
/// - a node removed keeps its claimer while its log can be reached (events captured there
///   before the removal are still delivered), but readiness no longer waits for it.
struct CitusNodeWatch: Service {
    let worker: HeraldWorker
    /// The coordinator sources, with the nodes each had when the worker started.
    let coordinators: [(source: SourceConfig, nodes: Set<Int>)]
    let interval: Duration
    let logger: Logger

    /// Nil when no source is a Citus coordinator.
    init?(worker: HeraldWorker, config: HeraldConfig, logger: Logger) {
        let coordinators = config.sources.filter { $0.citusCoordinator }.map { source in
            (source, Set(config.sources.compactMap { $0.citusNode?.coordinatorSource == source.name ? $0.citusNode?.group : nil }))
        }
        guard !coordinators.isEmpty else { return nil }
        self.worker = worker
        self.coordinators = coordinators
        interval = .seconds(config.worker.citusNodeWatchSeconds)
        self.logger = logger
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown { [self] in
            var known = Dictionary(uniqueKeysWithValues: coordinators.map { ($0.source.name, $0.nodes) })
            var removed: [String: Set<Int>] = [:]
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                for (source, _) in coordinators {
                    await look(at: source, known: &known[source.name, default: []], removed: &removed[source.name, default: []])
                }
            }
        }
    }

    private func look(at source: SourceConfig, known: inout Set<Int>, removed: inout Set<Int>) async {
        let layout: CitusLayout?
        do {
            layout = try await runBlocking("herald-citus-nodes") { try CitusLayout.read(PGConnection(url: source.database.url)) }
        } catch {
            logger.debug("could not read the Citus nodes", metadata: ["source": "\(source.name)", "error": "\(error)"])
            return
        }
        guard let layout else { return }
        let current = Set(layout.nodes.map(\.group))
        for node in layout.nodes where !known.contains(node.group) && node.isActive {
            await add(node, of: source)
            known.insert(node.group)
            removed.remove(node.group)
        }
        for group in known.subtracting(current).subtracting(removed) {
            removed.insert(group)
            let name = "\(source.name)-node\(group)"
            worker.sourceRemoved(name)
            logger.warning(
                "Citus worker node removed from the cluster: its log is still claimed from while it can be reached, and readiness no longer waits for it",
                metadata: ["source": "\(name)"])
        }
    }

    private func add(_ node: CitusNode, of source: SourceConfig) async {
        var metadata: Logger.Metadata = ["node": "\(node.description)", "source": "\(node.sourceName(coordinator: source.name))"]
        do {
            let applied = try await runBlocking("herald-citus-nodes") {
                try CitusNodeSchema.install(CitusLayout(localGroup: 0, nodes: [node]), coordinatorURL: source.database.url)
            }
            metadata["migrations"] = "\(applied.flatMap(\.migrations).count)"
        } catch {
            // Without the schema there, a shard moved to the node would fail every write to
            // it: an operator must act before rebalancing.
            logger.error(
                "new Citus worker node: Herald's schema could not be installed there; run herald install-triggers before moving shards to it",
                metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
        let nodeSource = CitusSources.nodeSources(of: source, layout: CitusLayout(localGroup: 0, nodes: [node]))[0]
        worker.addSource(nodeSource)
        logger.info("new Citus worker node: claiming from its log", metadata: metadata)
    }
}
