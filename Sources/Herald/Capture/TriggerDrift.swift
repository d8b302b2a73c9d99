/// Where the database's capture triggers and the configuration disagree: what `herald run`
/// warns about at start, `/readyz` lists, `herald triggers` shows and
/// `herald_trigger_drift{kind}` counts. Each disagreement silently loses deliveries (a trigger
/// not installed captures nothing) or piles up events nobody sends (an installed trigger no
/// configuration names), so each comes with the command that fixes it.
public struct TriggerDrift: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable, Encodable {
        /// A configured trigger's capture trigger is not in the database.
        case notInstalled = "not_installed"
        /// It is, but made from another definition (its fingerprint differs).
        case outdated
        /// The configured table does not exist (or is not a table).
        case tableMissing = "table_missing"
        /// A Herald capture trigger in the database that the configuration does not name.
        case unconfigured
    }

    public struct Finding: Sendable, Equatable, Encodable {
        public var kind: Kind
        /// The configured trigger's name, or for ``Kind/unconfigured`` the PostgreSQL trigger's.
        public var trigger: String
        public var table: TableName
        /// What to do about it.
        public var fix: String

        /// One line for a log, `/readyz` or `herald triggers`.
        public var line: String {
            switch kind {
            case .notInstalled: "trigger \(trigger) on \(table) is not installed: \(fix)"
            case .outdated: "trigger \(trigger) on \(table) is installed from another definition: \(fix)"
            case .tableMissing: "trigger \(trigger): table \(table) does not exist: \(fix)"
            case .unconfigured: "installed trigger \(trigger) on \(table) is in no configuration: \(fix)"
            }
        }

        enum CodingKeys: String, CodingKey { case kind, trigger, table, fix }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(kind, forKey: .kind)
            try container.encode(trigger, forKey: .trigger)
            try container.encode(table.description, forKey: .table)
            try container.encode(fix, forKey: .fix)
        }
    }

    public var findings: [Finding] = []

    public init(findings: [Finding] = []) {
        self.findings = findings
    }

    public var isEmpty: Bool { findings.isEmpty }

    public func count(_ kind: Kind) -> Int { findings.filter { $0.kind == kind }.count }

    /// The state of one configured trigger's capture, for `herald triggers`: `-` for cron
    /// triggers and one-off events, which capture nothing.
    public func capture(of trigger: TriggerConfig) -> String {
        guard trigger.isEventTrigger else { return "-" }
        guard trigger.hasCaptureOperations else { return "manual only" }
        return findings.first { $0.trigger == trigger.name && $0.kind != .unconfigured }?.kind.rawValue ?? "installed"
    }
}

extension TriggerConfig {
    /// Whether the trigger needs capture triggers in the database (cron triggers, one-off
    /// events and manual-only triggers do not).
    var hasCaptureOperations: Bool { insert != nil || update != nil || delete != nil }
}

extension TriggerInstaller {
    /// Compares the configuration with the capture triggers in the database and changes
    /// nothing. Unlike ``plan(_:)`` it does not stop at a missing table or column: it lists
    /// every disagreement it can see, for a worker that runs anyway.
    public func drift(_ connection: PGConnection) throws -> TriggerDrift {
        let installed = try installedTriggers(connection)
        let file = config.file
        var drift = TriggerDrift()
        var desired: [CaptureTrigger] = []
        var missingTables: Set<TableName> = []
        for trigger in config.triggers where trigger.hasCaptureOperations {
            do {
                _ = try tableColumns(connection, trigger: trigger)
            } catch let error as InstallError where error.code == .tableNotFound || error.code == .notATable {
                missingTables.insert(trigger.table)
                drift.findings.append(
                    .init(
                        kind: .tableMissing, trigger: trigger.name, table: trigger.table,
                        fix: "create it, or remove the trigger from \(file); then run herald install-triggers"))
                continue
            }
            // A key that cannot be resolved is install-triggers' to explain; compare without it.
            let wanted = CaptureTrigger.triggers(
                for: trigger, keyColumns: try? Self.keyColumns(of: trigger, connection),
                onShards: try Self.capturesOnShards(trigger.table, connection))
            desired += wanted
            let present = wanted.map { want in installed.first { $0.table == want.table && $0.name == want.name } }
            if present.contains(where: { $0 == nil }) {
                drift.findings.append(
                    .init(
                        kind: .notInstalled, trigger: trigger.name, table: trigger.table,
                        fix: "its changes are not captured; run herald install-triggers"))
            } else if zip(wanted, present).contains(where: { $0.fingerprint != $1?.fingerprint }) {
                drift.findings.append(
                    .init(
                        kind: .outdated, trigger: trigger.name, table: trigger.table,
                        fix: "it captures by the old definition; run herald install-triggers (--dry-run shows the change)"))
            }
        }
        let tables = Set(config.triggers.map(\.table))
        for existing in installed where !desired.contains(where: { $0.table == existing.table && $0.name == existing.name }) {
            guard !missingTables.contains(existing.table) else { continue }
            // On a table this configuration does not name it may be another configuration's on
            // the same database (install-triggers keeps those without --prune): say so.
            let drop =
                tables.contains(existing.table)
                ? "herald install-triggers"
                : "herald install-triggers --prune, unless another configuration on this database delivers it"
            drift.findings.append(
                .init(
                    kind: .unconfigured, trigger: existing.name, table: existing.table,
                    fix: "its events are captured but this configuration does not deliver them; add the trigger to \(file)"
                        + " (a misspelt key there?), or drop it with \(drop)"))
        }
        return drift
    }
}
