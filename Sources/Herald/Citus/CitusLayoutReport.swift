/// What `herald check-config` says about a Citus cluster: the nodes, each node's schema and
/// pending events, and where each configured table's events live. Read best effort: a source
/// that cannot be reached is not a configuration error, and says nothing here.
public enum CitusLayoutReport {
    public static func lines(for config: HeraldConfig) -> [String] {
        var lines: [String] = []
        for source in config.sources where source.citusNode == nil {
            guard let connection = try? PGConnection(url: source.database.url),
                let layout = try? CitusLayout.read(connection)
            else { continue }
            let prefix = config.usesSourcesList ? "source \(source.name): " : ""
            guard layout.isCoordinator else {
                lines.append(
                    prefix + "this database is a Citus worker node (group \(layout.localGroup)): point Herald at the coordinator")
                continue
            }
            lines.append(prefix + layout.summary)
            for node in layout.nodes {
                lines.append("  node \(node.description): " + nodeState(node, coordinatorURL: source.database.url))
            }
            for node in layout.removed {
                lines.append(
                    "  removed node \(node.description), claimed from until its log has no pending event: "
                        + nodeState(node, coordinatorURL: source.database.url))
            }
            for trigger in source.triggers where trigger.hasCaptureOperations {
                guard let placement = try? CitusPlacement.of(table: trigger.table, connection) else { continue }
                lines.append("  table \(trigger.table) (trigger \(trigger.name)): \(placement.description); \(placement.eventHome)")
            }
        }
        return lines
    }

    private static func nodeState(_ node: CitusNode, coordinatorURL: String) -> String {
        guard node.isActive else { return "inactive" }
        do {
            let connection = try PGConnection(url: CitusLayout.url(of: node, coordinatorURL: coordinatorURL))
            let version = try SchemaMigrator.currentVersion(connection)
            guard version > 0 else { return "no schema herald (run herald install-triggers)" }
            let pending = try connection.query("SELECT count(*) FROM herald.event_log WHERE status = 'pending'")
            return "schema herald version \(version), \(try pending.decode(Int.self, row: 0, column: 0)) pending events"
        } catch {
            return "unreachable (\(error.message))"
        }
    }
}
