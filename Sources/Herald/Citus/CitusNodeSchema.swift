/// Herald's schema on each worker node of a Citus cluster, installed by `install-triggers`
/// on the coordinator before any trigger goes on a distributed table: the triggers Citus
/// copies onto the shards write into their node's own `herald.event_log`, which must exist
/// first, or every write to the table would fail there.
///
/// Each node's schema is its own: migrations run with `citus.enable_ddl_propagation` off
/// (Citus would otherwise refuse DDL on a worker node, or send the coordinator's to every
/// node). Each node's event ids start at its ``CitusNode/eventIDFloor``.
enum CitusNodeSchema {
    /// What a node needs, or got.
    struct NodeChange: Sendable {
        var node: CitusNode
        var migrations: [SchemaFile]
        /// True when the node's schema herald held only objects Citus had copied from the
        /// coordinator (no event log): it is made anew.
        var replacedCopiedSchema = false
    }

    /// Brings every active worker node's schema to this binary's version, each in a
    /// transaction of its own. Refuses, naming the node, when a node is inactive or cannot
    /// be reached: a trigger on a distributed table must not go where its log is missing.
    static func install(_ layout: CitusLayout, coordinatorURL: String) throws -> [NodeChange] {
        try checkActive(layout)
        // Every node reachable first: a node down changes none.
        let connections = try layout.nodes.map { try connect($0, coordinatorURL: coordinatorURL) }
        var changes: [NodeChange] = []
        for (node, connection) in zip(layout.nodes, connections) {
            changes.append(
                try connection.transaction {
                    try connection.execute(
                        script: "SET LOCAL citus.enable_ddl_propagation = off; SET LOCAL lock_timeout = '\(TriggerInstaller.lockTimeout)'")
                    // Before looking at what is there: two installs at once (two workers seeing
                    // a new node) must not both judge the schema a copy and drop the other's.
                    try connection.query("SELECT pg_advisory_xact_lock($1::bigint)", [SchemaMigrator.advisoryLockKey])
                    let replaced = try dropCopiedSchema(connection)
                    let applied = try SchemaMigrator.apply(connection)
                    try raiseEventIDs(to: node.eventIDFloor, connection)
                    return NodeChange(node: node, migrations: applied, replacedCopiedSchema: replaced)
                })
        }
        return changes
    }

    /// What ``install(_:coordinatorURL:)`` would do, changing nothing.
    static func plan(_ layout: CitusLayout, coordinatorURL: String) throws -> [NodeChange] {
        try checkActive(layout)
        return try layout.nodes.map { node in
            let connection = try connect(node, coordinatorURL: coordinatorURL)
            let copied = try isCopiedSchema(connection)
            return NodeChange(
                node: node, migrations: copied ? SchemaMigrator.migrations : try SchemaMigrator.pending(connection),
                replacedCopiedSchema: copied)
        }
    }

    private static func checkActive(_ layout: CitusLayout) throws(PGError) {
        if let inactive = layout.nodes.first(where: { !$0.isActive }) {
            throw PGError(
                code: .schemaNotReady,
                message:
                    "Citus worker node \(inactive.description) is inactive: Herald's schema must be installed on every node "
                    + "before a trigger goes on a distributed table; activate it (citus_activate_node) or remove it, then run install-triggers again")
        }
    }

    private static func connect(_ node: CitusNode, coordinatorURL: String) throws(PGError) -> PGConnection {
        do {
            let connection = try PGConnection(url: CitusLayout.url(of: node, coordinatorURL: coordinatorURL))
            try CitusLayout.check(connection, is: node)
            return connection
        } catch {
            var named = error
            named.message =
                "Citus worker node \(node.description): \(error.message) (Herald connects to every node with the coordinator's "
                + "user, password and database, as listed in pg_dist_node)"
            throw named
        }
    }

    /// A schema herald without Herald's version table holds only what Citus copied from the
    /// coordinator. Herald before schema 18 installed itself on the coordinator with DDL
    /// propagation on, so Citus copied the schema and its functions to every node; those
    /// copies would clash with the node's own migrations, and are dropped, unless a trigger
    /// uses one (on a node added after the shard triggers, Citus copies the schema and
    /// herald.capture_shard() alone, which migration 18 replaces in place).
    private static func isCopiedSchema(_ connection: PGConnection) throws(PGError) -> Bool {
        let result = try connection.query(
            """
            SELECT to_regnamespace('herald') IS NOT NULL AND to_regclass('herald.schema_version') IS NULL
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relnamespace = to_regnamespace('herald'))
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
                               WHERE p.pronamespace = to_regnamespace('herald'))
            """)
        return try result.decode(Bool.self, row: 0, column: 0)
    }

    private static func dropCopiedSchema(_ connection: PGConnection) throws(PGError) -> Bool {
        guard try isCopiedSchema(connection) else { return false }
        try connection.execute(script: "DROP SCHEMA herald CASCADE")
        return true
    }

    /// Raises the node's event id sequence to `floor` (never lowers it).
    private static func raiseEventIDs(to floor: Int64, _ connection: PGConnection) throws(PGError) {
        try connection.query(
            """
            SELECT pg_catalog.setval(s.name, $1::bigint, false)
            FROM (SELECT pg_catalog.pg_get_serial_sequence('herald.event_log', 'id') AS name) s
            JOIN pg_catalog.pg_sequences q ON pg_catalog.format('%I.%I', q.schemaname, q.sequencename) = s.name
            WHERE coalesce(q.last_value, 0) < $1::bigint
            """, [String(floor)])
    }
}
