import Logging

/// A Herald capture trigger that exists in the database.
public struct InstalledTrigger: Sendable, Equatable {
    public var table: TableName
    public var name: String
    public var fingerprint: String
    /// Whether it calls the ordered capture function (writes ordering keys).
    public var isOrdered = false
}

/// What `install-triggers` does (or, with `--dry-run`, would do).
public struct InstallPlan: Sendable {
    public var migrations: [SchemaFile] = []
    public var create: [CaptureTrigger] = []
    public var replace: [CaptureTrigger] = []
    public var drop: [InstalledTrigger] = []
    public var unchanged: [CaptureTrigger] = []
    /// Herald triggers on tables this configuration does not name, left in place because
    /// pruning was off: most likely another configuration's on the same database.
    public var keptOtherTables: [InstalledTrigger] = []
    /// Triggers whose capture starts (or stops) writing ordering keys with this plan.
    public var orderingStarts: [String] = []
    public var orderingStops: [String] = []
    /// The Citus cluster this database coordinates, if it does.
    public var citus: CitusLayout?
    /// Each Citus worker node's schema work, done before the coordinator's transaction.
    var nodeChanges: [CitusNodeSchema.NodeChange] = []
    /// The configured tables Citus keeps, with where.
    var citusTables: [(table: TableName, placement: CitusPlacement)] = []

    public var isEmpty: Bool {
        migrations.isEmpty && create.isEmpty && replace.isEmpty && drop.isEmpty
            && nodeChanges.allSatisfy { $0.migrations.isEmpty && !$0.replacedCopiedSchema }
    }

    /// Where the events of each configured Citus table live, one line each, and the nodes.
    public var citusLayoutLines: [String] {
        guard let citus else { return [] }
        var lines = [
            citus.summary
                + (citus.nodes.isEmpty ? "" : ": " + citus.nodes.map(\.description).joined(separator: ", "))
        ]
        for (table, placement) in citusTables {
            lines.append("table \(table): \(placement.description); \(placement.eventHome)")
        }
        return lines
    }

    /// The trigger statements, in execution order.
    public var triggerStatements: [String] {
        var statements: [String] = []
        for trigger in drop {
            statements.append("DROP TRIGGER \(SQLQuoting.identifier(trigger.name)) ON \(trigger.table.quoted)")
        }
        for trigger in replace {
            statements.append("DROP TRIGGER \(SQLQuoting.identifier(trigger.name)) ON \(trigger.table.quoted)")
            statements += [trigger.createSQL, trigger.commentSQL]
        }
        for trigger in create {
            statements += [trigger.createSQL, trigger.commentSQL]
        }
        return statements
    }

    /// The whole transaction as SQL text, for `--dry-run`.
    public var script: String {
        var parts = citusLayoutLines.map { "-- " + $0 }
        for change in nodeChanges where !change.migrations.isEmpty || change.replacedCopiedSchema {
            parts.append(
                "-- on Citus worker node \(change.node.description), in a transaction of its own with citus.enable_ddl_propagation off:"
                    + (change.replacedCopiedSchema ? " DROP SCHEMA herald CASCADE (only objects Citus copied from the coordinator);" : "")
                    + " migrations " + change.migrations.map(\.name).joined(separator: ", ")
                    + "; event ids from \(change.node.eventIDFloor)")
        }
        parts += ["BEGIN;", "SET LOCAL lock_timeout = '\(TriggerInstaller.lockTimeout)';"]
        if citus != nil { parts.append("SET LOCAL citus.enable_ddl_propagation = off;") }
        if !migrations.isEmpty {
            parts.append("SELECT pg_advisory_xact_lock(\(SchemaMigrator.advisoryLockKey));")
            parts.append(SchemaMigrator.bootstrap.sql)
            for migration in migrations {
                parts.append("-- \(migration.name)\n" + migration.sql)
                parts.append(
                    "INSERT INTO herald.schema_version (version, name) VALUES (\(migration.version), \(SQLQuoting.literal(migration.name)));")
            }
        }
        if citus != nil, !triggerStatements.isEmpty { parts.append(TriggerInstaller.citusTriggerSettings) }
        parts += triggerStatements.map { $0 + ";" }
        parts.append("COMMIT;")
        return parts.joined(separator: "\n")
    }

    /// One line per change, for people.
    public var summary: [String] {
        var lines: [String] = []
        for change in nodeChanges {
            if change.replacedCopiedSchema {
                lines.append("Citus worker node \(change.node.description): replaced the copy of schema herald Citus had made")
            }
            lines += change.migrations.map { "Citus worker node \(change.node.description): applied schema migration \($0.name)" }
        }
        lines += migrations.map { "applied schema migration \($0.name)" }
        lines += create.map { "created trigger \($0.name) on \($0.table)" }
        lines += replace.map { "replaced trigger \($0.name) on \($0.table)" }
        lines += drop.map { "dropped trigger \($0.name) on \($0.table)" }
        lines += orderingStarts.map {
            "trigger \($0) now delivers in order per key; events it captured before this change have no key and are delivered without ordering"
        }
        lines += orderingStops.map {
            "trigger \($0) no longer captures ordering keys; events it captured with a key are still delivered in order per key"
        }
        return lines
    }
}

/// Makes the database's Herald triggers equal to the configuration, in one transaction:
/// creates missing ones, replaces changed ones, drops Herald triggers no longer configured.
/// Triggers Herald did not create (any not calling `herald.capture`) are never touched.
public struct TriggerInstaller {
    /// A trigger change locks its table against writes; wait at most this long for the lock
    /// rather than queueing the application's writes behind a long-running transaction.
    static let lockTimeout = "10s"

    public let config: HeraldConfig
    public let logger: Logger
    /// Whether Herald triggers on tables the configuration does not name are dropped. The
    /// command line keeps them unless `--prune`: two configurations on one database would
    /// otherwise drop each other's triggers.
    public var pruneOtherTables: Bool

    public init(config: HeraldConfig, logger: Logger, pruneOtherTables: Bool = true) {
        self.config = config
        self.logger = logger
        self.pruneOtherTables = pruneOtherTables
    }

    /// Computes the plan without changing anything.
    public func plan(_ connection: PGConnection) throws -> InstallPlan {
        let citus = try Self.citusLayout(connection)
        var plan = try triggerPlan(connection)
        plan.migrations = try SchemaMigrator.pending(connection)
        if let citus {
            plan.citus = citus
            plan.nodeChanges = try CitusNodeSchema.plan(citus, coordinatorURL: config.database.url)
        }
        return plan
    }

    /// Applies schema and triggers atomically and returns what changed. On a Citus
    /// coordinator, every worker node's schema comes first (each node in a transaction of its
    /// own), so no trigger ever goes onto a shard whose node lacks the event log.
    @discardableResult
    public func install(_ connection: PGConnection) throws -> InstallPlan {
        try connection.transaction {
            try connection.execute(script: "SET LOCAL lock_timeout = '\(Self.lockTimeout)'")
            return try installInOpenTransaction(connection)
        }
    }

    /// Set for the trigger statements on a Citus coordinator: they go to the shards (DDL
    /// propagation on), and Citus allows triggers on distributed tables only when told.
    static let citusTriggerSettings = "SET LOCAL citus.enable_ddl_propagation = on; SET LOCAL citus.enable_unsafe_triggers = on;"

    /// The Citus layout when this database is a Citus coordinator; nil without Citus.
    /// Refuses a Citus worker node: the coordinator installs every node.
    static func citusLayout(_ connection: PGConnection) throws -> CitusLayout? {
        guard let layout = try CitusLayout.read(connection) else { return nil }
        guard layout.isCoordinator else {
            throw PGError(
                code: .schemaNotReady,
                message:
                    "this database is a Citus worker node (group \(layout.localGroup)): point Herald at the coordinator, "
                    + "which installs Herald's schema on every node")
        }
        return layout
    }

    /// The work of ``install(_:)`` inside the caller's transaction (`migrate-from-hasura`
    /// does more in the same one).
    /// `changingCitusNodes` false (a dry run rolled back at the end) plans the worker
    /// nodes' schema work instead of doing it: it could not be rolled back with the rest.
    func installInOpenTransaction(_ connection: PGConnection, changingCitusNodes: Bool = true) throws -> InstallPlan {
        let citus = try Self.citusLayout(connection)
        // The coordinator's schema is its own, as each node's is (CitusNodeSchema).
        if citus != nil { try connection.execute(script: "SET LOCAL citus.enable_ddl_propagation = off") }
        let migrations = try SchemaMigrator.apply(connection)
        var plan = try triggerPlan(connection)
        plan.migrations = migrations
        plan.citus = citus
        if let citus {
            // Every worker node's log before any trigger can reach its shards, once the plan
            // has passed its checks (a refused table changes no node). Each node commits on
            // its own; a retry after a later failure finds them done.
            plan.nodeChanges =
                changingCitusNodes
                ? try CitusNodeSchema.install(citus, coordinatorURL: config.database.url)
                : try CitusNodeSchema.plan(citus, coordinatorURL: config.database.url)
            if changingCitusNodes { for node in citus.nodes { try CitusLayout.register(node, connection) } }
            if !plan.triggerStatements.isEmpty { try connection.execute(script: Self.citusTriggerSettings) }
        }
        for statement in plan.triggerStatements {
            try connection.execute(script: statement)
        }
        for line in plan.summary {
            logger.debug("\(line)")
        }
        return plan
    }

    private func triggerPlan(_ connection: PGConnection) throws -> InstallPlan {
        try validateTables(connection)
        try RowFilterCheck(triggers: config.triggers).validate(connection)
        var desired: [CaptureTrigger] = []
        var plan = InstallPlan()
        for trigger in config.triggers {
            let placement = trigger.hasCaptureOperations ? try CitusPlacement.of(table: trigger.table, connection) : nil
            if let placement, !plan.citusTables.contains(where: { $0.table == trigger.table }) {
                plan.citusTables.append((trigger.table, placement))
            }
            desired += CaptureTrigger.triggers(
                for: trigger, keyColumns: try Self.keyColumns(of: trigger, connection),
                onShards: placement?.capturesOnShards ?? false)
        }
        let installed = try installedTriggers(connection)
        for trigger in desired {
            if let existing = installed.first(where: { $0.table == trigger.table && $0.name == trigger.name }) {
                if existing.fingerprint == trigger.fingerprint {
                    plan.unchanged.append(trigger)
                } else {
                    plan.replace.append(trigger)
                }
                if trigger.isOrdered != existing.isOrdered {
                    if trigger.isOrdered, !plan.orderingStarts.contains(trigger.triggerName) {
                        plan.orderingStarts.append(trigger.triggerName)
                    } else if !trigger.isOrdered, !plan.orderingStops.contains(trigger.triggerName) {
                        plan.orderingStops.append(trigger.triggerName)
                    }
                }
            } else {
                plan.create.append(trigger)
            }
        }
        plan.drop = installed.filter { existing in
            !desired.contains { $0.table == existing.table && $0.name == existing.name }
        }
        if !pruneOtherTables {
            let tables = Set(config.triggers.map(\.table))
            plan.keptOtherTables = plan.drop.filter { !tables.contains($0.table) }
            plan.drop.removeAll { !tables.contains($0.table) }
        }
        return plan
    }

    /// Every table and column the config names must exist; the error names all that do
    /// not, before any change is made.
    private func validateTables(_ connection: PGConnection) throws {
        var columnsByTable: [TableName: Set<String>?] = [:]
        var problems: [InstallError] = []
        for trigger in config.triggers where trigger.hasCaptureOperations {
            if columnsByTable[trigger.table] == nil {
                do {
                    columnsByTable[trigger.table] = .some(try tableColumns(connection, trigger: trigger))
                } catch let error as InstallError {
                    problems.append(error)
                    columnsByTable[trigger.table] = .some(nil)
                }
            }
            guard let columns = columnsByTable[trigger.table] ?? nil else { continue }
            for (column, key) in trigger.referencedColumns where !columns.contains(column) {
                problems.append(
                    InstallError(
                        code: .columnNotFound, trigger: trigger.name, table: trigger.table, column: column,
                        message: "table \(trigger.table) has no column \"\(column)\" (trigger \(trigger.name), \(key))"))
            }
        }
        if var first = problems.first {
            first.others = Array(problems.dropFirst())
            throw first
        }
    }

    /// Whether the table's capture trigger runs on Citus shards (``CitusPlacement``).
    static func capturesOnShards(_ table: TableName, _ connection: PGConnection) throws(PGError) -> Bool {
        try CitusPlacement.of(table: table, connection)?.capturesOnShards ?? false
    }

    /// An ordered trigger's key columns: the listed ones, or the table's primary key in
    /// index order (a table without one is refused, naming it). Nil for unordered triggers.
    static func keyColumns(of trigger: TriggerConfig, _ connection: PGConnection) throws -> [String]? {
        guard let ordering = trigger.ordering else { return nil }
        if case .columns(let columns) = ordering.key { return columns }
        let columns = try Self.primaryKey(of: trigger.table, connection)
        guard !columns.isEmpty else {
            throw InstallError(
                code: .noPrimaryKey, trigger: trigger.name, table: trigger.table,
                message:
                    "table \(trigger.table) has no primary key, which trigger \(trigger.name)'s ordering.key: primary_key needs; list the key columns instead")
        }
        return columns
    }

    /// The table's primary-key columns in index order; empty when it has none.
    static func primaryKey(of table: TableName, _ connection: PGConnection) throws(PGError) -> [String] {
        let result = try connection.query(
            """
            SELECT a.attname FROM pg_index i
            CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indrelid = to_regclass($1) AND i.indisprimary
            ORDER BY k.position
            """, [table.quoted])
        return result.column(0).compactMap { $0 }
    }

    func tableColumns(_ connection: PGConnection, trigger: TriggerConfig) throws -> Set<String> {
        let relation = try connection.query(
            """
            SELECT c.oid, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $2
            """, [trigger.table.schema, trigger.table.name])
        guard relation.rowCount == 1 else {
            throw InstallError(
                code: .tableNotFound, trigger: trigger.name, table: trigger.table,
                message: "table \(trigger.table) does not exist (trigger \(trigger.name))")
        }
        let oid = try relation.decode(String.self, row: 0, column: 0)
        let kind = try relation.decode(String.self, row: 0, column: 1)
        guard kind == "r" || kind == "p" else {
            throw InstallError(
                code: .notATable, trigger: trigger.name, table: trigger.table,
                message: "\(trigger.table) is not a table; capture triggers need a table (trigger \(trigger.name))")
        }
        if let placement = try CitusPlacement.of(oid: oid, connection), let refusal = placement.refusal(trigger: trigger) {
            throw InstallError(code: .unsupportedPlacement, trigger: trigger.name, table: trigger.table, message: refusal)
        }
        let columns = try connection.query(
            "SELECT attname FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped", [oid])
        return Set(columns.column(0).compactMap { $0 })
    }

    /// Herald's triggers are the ones that call herald.capture(), herald.capture_ordered() or
    /// herald.capture_shard() (ordered when its key argument, the fourth, is not empty);
    /// partition clones (which PostgreSQL manages through the parent) are left out, and so,
    /// on a Citus coordinator, are the shards' (they live on the worker nodes).
    func installedTriggers(_ connection: PGConnection) throws -> [InstalledTrigger] {
        let result = try connection.query(
            """
            SELECT n.nspname, c.relname, t.tgname, coalesce(d.description, ''),
                   t.tgfoid = to_regprocedure('herald.capture_ordered()')
                   OR (t.tgfoid = to_regprocedure('herald.capture_shard()')
                       AND (string_to_array(encode(t.tgargs, 'escape'), '\\000'))[4] <> '')
            FROM pg_trigger t
            JOIN pg_class c ON c.oid = t.tgrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_description d ON d.objoid = t.oid AND d.classoid = 'pg_trigger'::regclass
            WHERE t.tgfoid IN (to_regprocedure('herald.capture()'), to_regprocedure('herald.capture_ordered()'),
                               to_regprocedure('herald.capture_shard()'))
              AND t.tgparentid = 0
            ORDER BY 1, 2, 3
            """)
        return try result.rows { row throws(PGError) in
            InstalledTrigger(
                table: TableName(
                    schema: try result.decode(String.self, row: row, column: 0),
                    name: try result.decode(String.self, row: row, column: 1)),
                name: try result.decode(String.self, row: row, column: 2),
                fingerprint: try result.decode(String.self, row: row, column: 3),
                // NULL when herald.capture_ordered() does not exist (a schema before ordered
                // delivery): then no trigger calls it.
                isOrdered: try result.decodeIfPresent(Bool.self, row: row, column: 4) ?? false)
        }
    }
}
