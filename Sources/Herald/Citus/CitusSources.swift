import Logging

/// The worker's view of a Citus cluster: a source whose database is a Citus coordinator
/// gets one more source per worker node, with the node's own log (``CitusNodeSchema``) and
/// the coordinator source's event triggers. Each such source has its claimer and recorder,
/// as any source has; the delivery pool, flow control and the stats endpoint are shared.
/// Cron triggers, scheduled events, pull consumers and the console stay with the coordinator.
public enum CitusSources {
    /// `config` with a source added for each worker node of every coordinator it names. A
    /// source that cannot be reached now is left as it is (its claimer keeps trying; the
    /// nodes are found at the next start): the worker must start without it.
    public static func expand(_ config: HeraldConfig, logger: Logger) -> HeraldConfig {
        var expanded = config
        for (index, source) in config.sources.enumerated() where source.citusNode == nil {
            let layout: CitusLayout?
            do {
                layout = try CitusLayout.read(PGConnection(url: source.database.url))
            } catch {
                logger.warning(
                    "could not read whether the source is a Citus coordinator; its worker nodes, if any, are not claimed from until the next start",
                    metadata: ["source": "\(source.name)", "error": "\(error)"])
                continue
            }
            guard let layout, layout.isCoordinator else { continue }
            // Nodes added later join while running: metrics carry the source from the start.
            expanded.sources[index].citusCoordinator = true
            expanded.usesSourcesList = true
            // Nodes removed from the cluster whose logs may still hold events are claimed
            // from too, until the node watch finds them empty and forgets them.
            let nodes = nodeSources(of: source, layout: layout) + nodeSources(of: source, nodes: layout.removed)
            guard !nodes.isEmpty else { continue }
            expanded.sources += nodes
            logger.info(
                "Citus coordinator: claiming from every worker node's log too",
                metadata: [
                    "source": "\(source.name)",
                    "nodes": "\(nodes.compactMap { $0.citusNode.map { "\($0.host):\($0.port)" } })",
                ])
            if !config.consumers.isEmpty {
                logger.warning(
                    "pull consumers read the coordinator's log only: events of distributed tables, kept on the worker nodes, are pushed to webhooks, never pulled",
                    metadata: ["source": "\(source.name)"])
            }
        }
        return expanded
    }

    /// One source per worker node: named `<source>:node<group>` (``CitusNode/sourceName(coordinator:)``), with the node's URL and the
    /// coordinator source's event triggers (pushed ones: pull consumers read one database).
    static func nodeSources(of source: SourceConfig, layout: CitusLayout) -> [SourceConfig] {
        nodeSources(of: source, nodes: layout.nodes)
    }

    static func nodeSources(of source: SourceConfig, nodes: [CitusNode]) -> [SourceConfig] {
        nodes.map { node in
            var nodeSource = SourceConfig(
                name: node.sourceName(coordinator: source.name),
                url: CitusLayout.url(of: node, coordinatorURL: source.database.url),
                triggers: source.triggers.filter { $0.isEventTrigger && $0.pullConsumer == nil })
            nodeSource.database.urlOrigin = "Citus node \(node.description) of source \(source.name)"
            var node = node
            node.coordinatorSource = source.name
            nodeSource.citusNode = node
            nodeSource.citusCoordinatorDatabase = source.database
            return nodeSource
        }
    }
}
