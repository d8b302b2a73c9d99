/// Where Citus keeps a table, as `install-triggers` must know before it installs a capture
/// trigger: a trigger on a table whose rows live on worker nodes runs there (Citus copies it
/// onto every shard), where `herald.event_log` does not exist, so every application write to
/// the table would fail. Such tables are refused, naming the table and what to do; tables
/// that stay on this server are captured as on any PostgreSQL.
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

    /// Why a capture trigger cannot go on such a table, and what to do instead; nil when it can.
    func refusal(trigger: TriggerConfig) -> String? {
        let why =
            "Citus runs a trigger on a table's shards, on the nodes that hold them, where herald.event_log does not exist: "
            + "every write to the table would fail"
        let leave = "or leave the table out of the configuration"
        switch self {
        case .distributed(let method, let column, let shards):
            let how = column.map { "\(method) on \($0)" } ?? method
            return "table \(trigger.table) is a Citus distributed table (\(how), \(shards) shard\(shards == 1 ? "" : "s")); "
                + "Herald cannot capture it yet (trigger \(trigger.name)). \(why). Keep the table on the coordinator "
                + "(SELECT undistribute_table('\(trigger.table.quoted)')) \(leave)."
        case .reference:
            return "table \(trigger.table) is a Citus reference table, copied to every node; "
                + "Herald cannot capture it yet (trigger \(trigger.name)). \(why). Keep the table on the coordinator "
                + "(SELECT undistribute_table('\(trigger.table.quoted)')) \(leave)."
        case .citusLocal:
            return "table \(trigger.table) is a Citus local table (in Citus's metadata, kept on the coordinator); "
                + "Herald cannot capture it yet (trigger \(trigger.name)): writes routed through a worker node commit with "
                + "two-phase commit, which refuses the capture's NOTIFY, and its rows carry the shard's name. "
                + "Remove it from Citus's metadata (SELECT undistribute_table('\(trigger.table.quoted)')) \(leave)."
        }
    }
}
