import Foundation
import Herald

/// A database prepared as Hasura v2 leaves a source: its catalog (event_log and friends) and
/// its `notify_hasura_<trigger>_<OP>` capture triggers, from the fixture SQL in
/// Fixtures/hasura-catalog (reproduced from Hasura's public init_pg_source.sql and trigger
/// template).
enum HasuraCatalog {
    static func install(_ connection: PGConnection) throws {
        try connection.execute(
            script: try String(contentsOfFile: Fixtures.path("hasura-catalog/init_pg_source.sql"), encoding: .utf8))
    }

    /// The scheduled-trigger tables of Hasura's metadata catalog (cron and one-off events),
    /// for a database that is both Hasura's metadata database and its source.
    static func installScheduled(_ connection: PGConnection) throws {
        try connection.execute(
            script: try String(
                contentsOfFile: Fixtures.path("hasura-catalog/init_pg_metadata_scheduled.sql"), encoding: .utf8))
    }

    /// Renders Hasura's trigger template for one operation on `public.<table>` with
    /// `columns: "*"`, as Hasura does when it creates an event trigger.
    static func addTrigger(_ connection: PGConnection, name: String, table: String, operation: String) throws {
        let template = try String(
            contentsOfFile: Fixtures.path("hasura-catalog/notify_hasura_trigger.sql"), encoding: .utf8)
        let substitutions = [
            "{{NAME}}": name, "{{OPERATION}}": operation, "{{SCHEMA_NAME}}": "public", "{{TABLE_NAME}}": table,
            "{{QUALIFIED_TABLE}}": "\"public\".\"\(table)\"",
            "{{OLD_ROW}}": "OLD", "{{NEW_ROW}}": "NEW",
            "{{OLD_DATA_EXPRESSION}}": operation == "INSERT" ? "NULL" : "row_to_json(OLD)",
            "{{NEW_DATA_EXPRESSION}}": operation == "DELETE" ? "NULL" : "row_to_json(NEW)",
        ]
        var sql = template
        for (key, value) in substitutions { sql = sql.replacingOccurrences(of: key, with: value) }
        try connection.execute(script: sql)
    }
}

/// An application writing rows one transaction at a time on a thread of its own, recording
/// which inserts committed.
final class ApplicationWriter: @unchecked Sendable {
    private let lock = NSLock()
    private var committed: [Int] = []
    private var failures: [String] = []
    private var stopRequested = false
    private let done = DispatchSemaphore(value: 0)

    init(url: String, table: String, firstID: Int) {
        let thread = Thread { [self] in
            defer { done.signal() }
            guard let connection = try? PGConnection(url: url) else { return }
            var id = firstID
            while !lock.withLock({ stopRequested }) {
                do {
                    try connection.query("INSERT INTO \(table) (id, name) VALUES ($1, 'app')", [String(id)])
                    lock.withLock { committed.append(id) }
                } catch {
                    lock.withLock { failures.append("\(error)") }
                }
                id += 1
            }
        }
        thread.start()
    }

    /// Stops writing and returns the committed ids and any errors.
    func stop() -> (committed: [Int], failures: [String]) {
        lock.withLock { stopRequested = true }
        done.wait()
        return lock.withLock { (committed, failures) }
    }

    var count: Int { lock.withLock { committed.count } }
}
