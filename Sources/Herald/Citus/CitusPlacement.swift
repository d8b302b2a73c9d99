/// Where Citus keeps a table, as `install-triggers` must know before it installs a capture
/// trigger: a trigger on a table whose rows live on worker nodes runs there (Citus copies it
/// onto every shard), and writes into that node's own `herald.event_log`
/// (``CitusNodeSchema``). Reference tables are refused, naming the table and what to do.
enum CitusPlacement: Equatable {
    /// Sharded over the worker nodes: hash, range or append distribution on `column`, or a
    /// single-shard table of schema-based sharding (no column).
    case distributed(method: String, column: String?, shards: Int)
    /// Copied to every node (its triggers would run on each).
    case reference
    /// Added to Citus's metadata but kept on the coordinator
    /// (`citus_add_local_table_to_metadata`, or a foreign key to a reference table).
    case citusLocal

    /// The table's placement; nil when Citus is not installed or the table is not in its
    /// metadata (a plain table of this server).
    static func of(table: TableName, _ connection: PGConnection) throws(PGError) -> CitusPlacement? {
        let oid = try connection.query("SELECT to_regclass($1)::oid", [table.quoted])
        guard let value = oid[0, 0] else { return nil }
        return try of(oid: value, connection)
    }

    static func of(oid: String, _ connection: PGConnection) throws(PGError) -> CitusPlacement? {
        let installed = try connection.query("SELECT to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL")
        guard try installed.decode(Bool.self, row: 0, column: 0) else { return nil }
        let result = try connection.query(
            """
            SELECT p.partmethod::text, p.repmodel::text, p.colocationid,
                   CASE WHEN p.partkey IS NULL THEN NULL
                        ELSE pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) END,
                   (SELECT count(*) FROM pg_catalog.pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid)
            FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = $1::oid
            """, [oid])
        guard result.rowCount == 1 else { return nil }
        return classify(
            method: try result.decode(String.self, row: 0, column: 0),
            replication: try result.decode(String.self, row: 0, column: 1),
            colocation: try result.decode(Int.self, row: 0, column: 2),
            column: try result.decodeIfPresent(String.self, row: 0, column: 3),
            shards: try result.decode(Int.self, row: 0, column: 4))
    }

    /// `pg_dist_partition`'s codes: `partmethod` h(ash), r(ange), a(ppend) or n(one);
    /// `repmodel` t for reference tables; a table with no method and no colocation group is
    /// a Citus local table, one with a group a single-shard distributed table.
    static func classify(method: String, replication: String, colocation: Int, column: String?, shards: Int) -> CitusPlacement {
        switch method {
        case "h": .distributed(method: "hash", column: column, shards: shards)
        case "r": .distributed(method: "range", column: column, shards: shards)
        case "a": .distributed(method: "append", column: column, shards: shards)
        default:
            replication == "t" ? .reference : (colocation == 0 ? .citusLocal : .distributed(method: "single shard", column: nil, shards: shards))
        }
    }

    /// Whether its capture trigger runs on shards (Citus copies it onto each): the trigger
    /// then calls herald.capture_shard(), which names the table itself and sends no NOTIFY.
    var capturesOnShards: Bool {
        switch self {
        case .distributed, .citusLocal: true
        case .reference: false
        }
    }

    /// Where its events are written, for layouts.
    var eventHome: String {
        switch self {
        case .distributed: "events in the herald.event_log of the node holding each shard"
        case .citusLocal: "events in the coordinator's herald.event_log"
        case .reference: "refused by install-triggers"
        }
    }

    /// `hash on tenant_id, 32 shards`, for layouts and messages.
    var description: String {
        switch self {
        case .distributed(let method, let column, let shards):
            "distributed (\(column.map { "\(method) on \($0)" } ?? method), \(shards) shard\(shards == 1 ? "" : "s"))"
        case .reference: "reference table"
        case .citusLocal: "Citus local table (kept on the coordinator)"
        }
    }

    /// Why a capture trigger cannot go on such a table, and what to do instead; nil when it can.
    func refusal(trigger: TriggerConfig) -> String? {
        guard case .reference = self else { return nil }
        return "table \(trigger.table) is a Citus reference table, copied to every node; Herald cannot capture it "
            + "(trigger \(trigger.name)): Citus runs its trigger on every node's copy, so each write would be captured "
            + "once per node, and delivered as many times. Capture a distributed or a coordinator table instead, keep the "
            + "table on the coordinator (SELECT undistribute_table('\(trigger.table.quoted)')), or leave it out of the "
            + "configuration."
    }
}
