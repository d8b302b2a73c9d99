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
    /// Removed nodes still claimed from at the start, by coordinator source.
    let initiallyRemoved: [String: Set<Int>]

    /// Nil when no source is, or may be, a Citus coordinator. With several sources, one that
    /// could not be read at the start is watched too (its nodes join when it answers); with
    /// one, the worker does not start without its database.
    init?(worker: HeraldWorker, config: HeraldConfig, logger: Logger) {
        let watched = config.sources.filter { $0.citusCoordinator || ($0.citusNode == nil && config.usesSourcesList) }
        let coordinators = watched.map { source in
            (source, Set(config.sources.compactMap { $0.citusNode?.coordinatorSource == source.name ? $0.citusNode?.group : nil }))
        }
        var initiallyRemoved: [String: Set<Int>] = [:]
        for node in config.sources.compactMap(\.citusNode) where node.isRemoved {
            worker.sourceRemoved(node.sourceName(coordinator: node.coordinatorSource))
            initiallyRemoved[node.coordinatorSource, default: []].insert(node.group)
        }
        self.initiallyRemoved = initiallyRemoved
        guard !coordinators.isEmpty else { return nil }
        self.worker = worker
        self.coordinators = coordinators
        interval = .seconds(config.worker.citusNodeWatchSeconds)
        self.logger = logger
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown { [self] in
            var known = Dictionary(uniqueKeysWithValues: coordinators.map { ($0.source.name, $0.nodes) })
            var removed = initiallyRemoved
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
        guard layout.isCoordinator else { return }
        for node in layout.nodes where !known.contains(node.group) && node.isActive {
            // Tried again at every look until the node's schema is there.
            guard await add(node, of: source) else { continue }
            known.insert(node.group)
            removed.remove(node.group)
        }
        for group in known.subtracting(current).subtracting(removed) {
            removed.insert(group)
            let name = CitusNode(group: group, host: "", port: 0).sourceName(coordinator: source.name)
            worker.sourceRemoved(name)
            logger.warning(
                "Citus worker node removed from the cluster: its log is claimed from until it has no pending event, and readiness no longer waits for it",
                metadata: ["source": "\(name)"])
        }
        for node in layout.removed { await forgetIfDrained(node, of: source) }
    }

    /// A removed node whose log has no pending event is forgotten (its row in
    /// herald.citus_nodes deleted): nothing is left to claim there, even after a restart.
    private func forgetIfDrained(_ node: CitusNode, of source: SourceConfig) async {
        do {
            let forgotten = try await runBlocking("herald-citus-nodes") { () throws -> Bool in
                let log = try PGConnection(url: CitusLayout.url(of: node, coordinatorURL: source.database.url))
                // Whether any is pending, not how many: the look stops at the first.
                let pending = try log.query(
                    "SELECT EXISTS (SELECT FROM herald.event_log WHERE status = 'pending')")
                guard try !pending.decode(Bool.self, row: 0, column: 0) else { return false }
                try CitusLayout.forget(group: node.group, PGConnection(url: source.database.url))
                return true
            }
            if forgotten {
                logger.info(
                    "removed Citus worker node's log has no pending event: forgotten",
                    metadata: ["source": "\(node.sourceName(coordinator: source.name))"])
            }
        } catch {
            logger.debug(
                "removed Citus worker node's log cannot be read; its events wait for it",
                metadata: ["source": "\(node.sourceName(coordinator: source.name))", "error": "\(error)"])
        }
    }

    /// Installs Herald's schema on the node and starts claiming from it; false (logged) when
    /// the schema cannot be installed yet, to be tried at the next look.
    private func add(_ node: CitusNode, of source: SourceConfig) async -> Bool {
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
                "new Citus worker node: Herald's schema could not be installed there (tried again every \(interval)); run herald install-triggers before moving shards to it",
                metadata: metadata.merging(["error": "\(error)"]) { $1 })
            return false
        }
        do {
            try await runBlocking("herald-citus-nodes") { try CitusLayout.register(node, PGConnection(url: source.database.url)) }
        } catch {
            logger.warning(
                "new Citus worker node: could not record it on the coordinator; after a restart its events are found only while it is in the cluster",
                metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
        let nodeSource = CitusSources.nodeSources(of: source, nodes: [node])[0]
        worker.addSource(nodeSource)
        logger.info("new Citus worker node: claiming from its log", metadata: metadata)
        return true
    }
}
