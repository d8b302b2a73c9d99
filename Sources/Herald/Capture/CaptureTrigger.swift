import Crypto
import Foundation

/// The row operations a capture trigger fires on.
public enum CaptureOperation: String, Sendable, CaseIterable {
    case insert, update, delete

    var sqlKeyword: String { rawValue.uppercased() }
}

/// One PostgreSQL trigger Herald wants on a table: one per configured trigger and operation.
public struct CaptureTrigger: Sendable, Equatable {
    public var table: TableName
    /// The PostgreSQL trigger name, `herald_<trigger>_<op>`.
    public var name: String
    public var triggerName: String
    public var operation: CaptureOperation
    public var createSQL: String
    /// Whether its capture writes ordering keys.
    public var isOrdered = false

    /// Stored as the trigger's comment; a different fingerprint means the definition changed.
    public var fingerprint: String {
        let digest = SHA256.hash(data: Data(createSQL.utf8))
        return "herald:" + digest.prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    public var commentSQL: String {
        "COMMENT ON TRIGGER \(SQLQuoting.identifier(name)) ON \(table.quoted) IS \(SQLQuoting.literal(fingerprint))"
    }

    /// The capture triggers a configured trigger needs, in insert, update, delete order.
    /// `keyColumns`: an ordered trigger's key, resolved (a `primary_key` key is looked up in
    /// the catalog by the installer); nil captures without a key. `onShards`: the table is a
    /// Citus distributed (or Citus local) table, whose trigger runs on its shards
    /// (``shardFunction``).
    public static func triggers(for config: TriggerConfig, keyColumns: [String]? = nil, onShards: Bool = false)
        -> [CaptureTrigger]
    {
        var result: [CaptureTrigger] = []
        for operation in CaptureOperation.allCases {
            guard let spec = config.spec(for: operation) else { continue }
            let name = "herald_\(config.name)_\(operation.rawValue)"
            result.append(
                CaptureTrigger(
                    table: config.table, name: name, triggerName: config.name, operation: operation,
                    createSQL: createStatement(
                        name: name, config: config, operation: operation, spec: spec, keyColumns: keyColumns,
                        onShards: onShards),
                    isOrdered: keyColumns != nil))
        }
        return result
    }

    /// The function an ordered trigger's capture calls: it also writes the event's key.
    static let orderedFunction = "herald.capture_ordered"

    /// The function a trigger on a Citus table's shards calls: it names the table from its
    /// arguments (not the shard's name) and never lets the writer's transaction NOTIFY
    /// (sql/018_citus_capture.sql).
    static let shardFunction = "herald.capture_shard"


    static func createStatement(
        name: String, config: TriggerConfig, operation: CaptureOperation, spec: OperationSpec, keyColumns: [String]? = nil,
        onShards: Bool = false
    ) -> String {
        var sql = "CREATE TRIGGER \(SQLQuoting.identifier(name)) AFTER \(operation.sqlKeyword) ON \(config.table.quoted)"
        sql += " FOR EACH ROW"
        // A WHEN clause is evaluated before the function is called, so updates that change
        // none of the listed columns, and rows the filter rejects, cost no plpgsql call at all.
        var conditions: [String] = []
        if operation == .update {
            switch spec.columns {
            case .only(let columns):
                let changes = columns.map {
                    "OLD.\(SQLQuoting.identifier($0)) IS DISTINCT FROM NEW.\(SQLQuoting.identifier($0))"
                }
                conditions.append(changes.joined(separator: " OR "))
            case .all:
                // Hasura sends no event for an update that changes nothing (`SET v = v`). The
                // row is compared byte for byte (`*<>`, Hasura's own fallback): `IS DISTINCT
                // FROM` on a whole row needs an equality operator for every column, and one
                // json or point column would make every UPDATE of the table fail.
                conditions.append("OLD.* *<> NEW.*")
            }
        }
        if let filter = config.filter?.condition(for: operation, table: config.table) {
            // Comments were dropped when the filter was read, so none can swallow what follows.
            conditions.append(filter)
        }
        if conditions.count == 1 {
            sql += " WHEN (\(conditions[0]))"
        } else if !conditions.isEmpty {
            sql += " WHEN (" + conditions.map { "(\($0))" }.joined(separator: " AND ") + ")"
        }
        var arguments = [config.name]
        if onShards {
            arguments += [config.table.schema, config.table.name, keyColumns.map(PGArray.literal) ?? ""]
        } else if let keyColumns {
            arguments.append(PGArray.literal(keyColumns))
        }
        if case .only(let payload) = spec.payload { arguments += payload }
        let function = onShards ? Self.shardFunction : (keyColumns == nil ? "herald.capture" : Self.orderedFunction)
        sql += " EXECUTE FUNCTION \(function)(\(arguments.map(SQLQuoting.literal).joined(separator: ", ")))"
        if config.triggerOnReplication {
            // Hasura's trigger_on_replication: also fire for rows a logical-replication
            // subscription applies (session_replication_role = replica).
            sql += "; ALTER TABLE \(config.table.quoted) ENABLE ALWAYS TRIGGER \(SQLQuoting.identifier(name))"
        }
        return sql
    }
}

extension TriggerConfig {
    public func spec(for operation: CaptureOperation) -> OperationSpec? {
        switch operation {
        case .insert: insert
        case .update: update
        case .delete: delete
        }
    }

    /// Columns the config names for this table, with the key that names them, for validation.
    var referencedColumns: [(column: String, key: String)] {
        var result: [(String, String)] = []
        for operation in CaptureOperation.allCases {
            guard let spec = spec(for: operation) else { continue }
            if case .only(let columns) = spec.columns {
                result += columns.map { ($0, "definition.\(operation.rawValue).columns") }
            }
            if case .only(let columns) = spec.payload {
                result += columns.map { ($0, "definition.\(operation.rawValue).payload") }
            }
        }
        if case .columns(let columns) = ordering?.key {
            result += columns.map { ($0, "ordering.key") }
        }
        return result
    }
}
