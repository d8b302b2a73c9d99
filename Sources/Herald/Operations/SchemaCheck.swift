/// Every command that reads or changes the event log checks the schema first, so a database
/// Herald was never installed in (or an older schema) gets the fix, not a raw 42P01.
public enum SchemaCheck {
    public static func requireInstalled(_ connection: PGConnection) throws(PGError) {
        if let message = problem(version: try SchemaMigrator.currentVersion(connection)) {
            throw PGError(code: .schemaNotReady, message: message)
        }
    }

    /// What is wrong with a database at schema `version`, with the fix; nil when it is ready.
    public static func problem(version: Int) -> String? {
        if version == SchemaMigrator.latestVersion { return nil }
        if version == 0 {
            return "this database has no Herald schema yet (herald.event_log): run herald install-triggers first"
        }
        if version > SchemaMigrator.latestVersion {
            return "schema herald is at version \(version), newer than this herald knows (\(SchemaMigrator.latestVersion)): upgrade herald"
        }
        return "schema herald is at version \(version), this herald needs \(SchemaMigrator.latestVersion): run herald install-triggers"
    }
}
