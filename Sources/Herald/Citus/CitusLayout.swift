import Foundation

/// One worker node of a Citus cluster, as the coordinator's `pg_dist_node` lists it.
public struct CitusNode: Sendable, Equatable, Hashable {
    /// The node's group: its identity in Citus's metadata (the coordinator's is 0).
    public var group: Int
    public var host: String
    public var port: Int
    /// False after `citus_disable_node`: Citus routes nothing to it.
    public var isActive: Bool
    /// The name of the source whose database coordinates it (set by ``CitusSources``).
    public var coordinatorSource = ""
    /// No longer in the cluster, but its log may still hold events (``CitusLayout/removed``).
    public var isRemoved = false

    public init(group: Int, host: String, port: Int, isActive: Bool = true) {
        self.group = group
        self.host = host
        self.port = port
        self.isActive = isActive
    }

    /// `host:port (group N)`, for messages.
    public var description: String { "\(host):\(port) (group \(group))" }

    /// The source name its events are claimed under: the coordinator's source and the group,
    /// joined by a colon, which a configured source's name cannot hold (so never clashes).
    public func sourceName(coordinator source: String) -> String { "\(source):node\(group)" }

    /// The configured source a claimed-from source belongs to: the coordinator's for a
    /// node's source (the part before the colon), the source itself otherwise.
    public static func configuredSource(of source: String) -> Substring {
        source.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? Substring(source)
    }

    /// Every node's event ids start at the group shifted into the top bits, so an id is
    /// unique across the cluster and names its node (`id >> 48`): 2^48 events per node.
    public var eventIDFloor: Int64 { Int64(group) << CitusLayout.eventIDGroupShift }
}

/// Where Citus keeps Herald's events: the database Herald is pointed at is a Citus
/// coordinator, and each worker node has its own schema herald, into which the triggers on
/// the shards it holds write (sql/018_citus_capture.sql).
public struct CitusLayout: Sendable, Equatable {
    /// This database's group: 0 on the coordinator.
    public var localGroup: Int
    /// The primary worker nodes, by group.
    public var nodes: [CitusNode]
    /// Nodes Herald installed itself on that are no longer in the cluster
    /// (`herald.citus_nodes`, sql/019_citus_nodes.sql): their logs may still hold events.
    public var removed: [CitusNode] = []

    public static let eventIDGroupShift: Int64 = 48

    /// Refuses a connection that reached another node than `node` (a URL option such as
    /// `hostaddr` or `service` can outweigh the host Herald sets): installing or claiming
    /// there would serve the wrong log.
    public static func check(_ connection: PGConnection, is node: CitusNode) throws(PGError) {
        let group = try connection.query("SELECT groupid FROM pg_catalog.pg_dist_local_group")
        let found = try group.decode(Int.self, row: 0, column: 0)
        guard found == node.group else {
            throw PGError(
                code: .unexpectedResult,
                message:
                    "Citus worker node \(node.description): the connection reached group \(found) instead (an option of the coordinator's "
                    + "URL, such as hostaddr or service, overrides the node's host and port); use host and port only")
        }
    }

    public var isCoordinator: Bool { localGroup == 0 }

    /// `Citus coordinator with 2 worker nodes`, for layouts.
    public var summary: String { "Citus coordinator with \(nodes.count) worker node\(nodes.count == 1 ? "" : "s")" }

    /// The layout; nil when the Citus extension is not installed in this database.
    public static func read(_ connection: PGConnection) throws(PGError) -> CitusLayout? {
        let installed = try connection.query(
            "SELECT to_regclass('pg_catalog.pg_dist_node') IS NOT NULL AND to_regclass('pg_catalog.pg_dist_local_group') IS NOT NULL")
        guard try installed.decode(Bool.self, row: 0, column: 0) else { return nil }
        let group = try connection.query("SELECT groupid FROM pg_catalog.pg_dist_local_group")
        let nodes = try connection.query(
            """
            SELECT groupid, nodename, nodeport, isactive FROM pg_catalog.pg_dist_node
            WHERE noderole = 'primary' AND groupid <> 0 ORDER BY groupid
            """)
        var layout = CitusLayout(
            localGroup: try group.decode(Int.self, row: 0, column: 0),
            nodes: try nodes.rows { row throws(PGError) in
                CitusNode(
                    group: try nodes.decode(Int.self, row: row, column: 0),
                    host: try nodes.decode(String.self, row: row, column: 1),
                    port: try nodes.decode(Int.self, row: row, column: 2),
                    isActive: try nodes.decode(Bool.self, row: row, column: 3))
            })
        let registry = try connection.query("SELECT to_regclass('herald.citus_nodes') IS NOT NULL")
        if try registry.decode(Bool.self, row: 0, column: 0) {
            let removed = try connection.query(
                """
                SELECT node_group, host, port FROM herald.citus_nodes
                WHERE node_group <> ALL ($1::int[]) ORDER BY node_group
                """, [PGArray.literal(layout.nodes.map { String($0.group) })])
            layout.removed = try removed.rows { row throws(PGError) in
                var node = CitusNode(
                    group: try removed.decode(Int.self, row: row, column: 0),
                    host: try removed.decode(String.self, row: row, column: 1),
                    port: try removed.decode(Int.self, row: row, column: 2))
                node.isRemoved = true
                return node
            }
        }
        return layout
    }

    /// Records that Herald is installed on `node` (on the coordinator).
    static func register(_ node: CitusNode, _ connection: PGConnection) throws(PGError) {
        try connection.query(
            """
            INSERT INTO herald.citus_nodes (node_group, host, port) VALUES ($1::int, $2, $3::int)
            ON CONFLICT (node_group) DO UPDATE SET host = excluded.host, port = excluded.port, seen_at = now()
            """, [String(node.group), node.host, String(node.port)])
    }

    /// Forgets a removed node whose log has nothing pending (on the coordinator).
    static func forget(group: Int, _ connection: PGConnection) throws(PGError) {
        try connection.query("DELETE FROM herald.citus_nodes WHERE node_group = $1::int", [String(group)])
    }

    /// The URL of `node`: the coordinator's, with the node's host and port (same user,
    /// password, database and options: Herald's role must exist on every node, as Citus's
    /// own connections need).
    public static func url(of node: CitusNode, coordinatorURL: String) -> String {
        let trimmed = coordinatorURL.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("postgres://") || trimmed.hasPrefix("postgresql://") else {
            // A keyword string: a keyword given twice takes its last value.
            return "\(trimmed) host=\(keywordValue(node.host)) port=\(node.port)"
        }
        if var components = URLComponents(string: trimmed), components.host != nil {
            if node.host.contains(":") {
                components.percentEncodedHost = "[\(node.host)]"
            } else {
                components.host = node.host
            }
            components.port = node.port
            // Parameters in the query would override the authority: drop those two.
            components.queryItems = components.queryItems?.filter { $0.name != "host" && $0.name != "port" && $0.name != "hostaddr" }
            if components.queryItems?.isEmpty == true { components.queryItems = nil }
            if let url = components.string { return url }
        }
        // A URI URLComponents cannot take apart (several hosts): libpq reads host and port
        // from the query too, and the query's win.
        let separator = trimmed.contains("?") ? "&" : "?"
        return "\(trimmed)\(separator)host=\(node.host)&port=\(node.port)"
    }

    private static func keywordValue(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }
}
