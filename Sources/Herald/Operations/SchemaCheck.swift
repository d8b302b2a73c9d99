/// Every command that reads or changes the event log checks the schema first, so a database
/// Herald was never installed in (or an older schema) gets the fix, not a raw 42P01.
public enum SchemaCheck {
    public static func requireInstalled(_ connection: PGConnection) throws(PGError) {
        let version = try SchemaMigrator.currentVersion(connection)
        guard version != SchemaMigrator.latestVersion else { return }
        let message =
            version == 0
            ? "this database has no Herald schema (herald.event_log): run herald install-triggers first"
            : "schema herald is at version \(version), this herald needs \(SchemaMigrator.latestVersion): run herald install-triggers"
        throw PGError(code: .unexpectedResult, message: message)
    }
}
