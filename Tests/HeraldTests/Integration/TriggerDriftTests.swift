import Foundation
import Logging
import Testing

@testable import Herald

/// `herald run`, `/readyz`, `/metrics` and `herald triggers` say where the configuration and
/// the database's capture triggers disagree (issue 22, finding 2).
@Suite("Trigger drift", .enabled(if: TestEnvironment.integrationEnabled))
struct TriggerDriftTests {
    static func entry(_ table: String, _ triggers: [(String, String)]) -> String {
        "  - table: {schema: public, name: \(table)}\n    event_triggers:\n"
            + triggers.map { "      - {name: \($0.0), definition: \($0.1), webhook: 'http://127.0.0.1:9/h'}\n" }.joined()
    }

    /// Installs `a` (insert) and `b` (delete) on orders and `e` on notes, then reads a
    /// configuration where `a` changed, `b` and notes are gone, `c` is new and `d` is on a
    /// table that does not exist.
    func driftedDatabase() throws -> (TestDatabase, installed: String, drifted: String) {
        let database = try TestDatabase()
        try database.connect().execute(
            script: "CREATE TABLE orders (id int PRIMARY KEY, status text); CREATE TABLE notes (id int PRIMARY KEY)")
        let installed =
            Self.entry("orders", [("a", #"{insert: {columns: "*"}}"#), ("b", #"{delete: {columns: "*"}}"#)])
            + Self.entry("notes", [("e", #"{insert: {columns: "*"}}"#)])
        try TriggerInstaller(config: try database.config(tables: installed), logger: Logger(label: "t"))
            .install(try database.connect())
        let drifted =
            Self.entry("orders", [("a", #"{insert: {columns: "*"}, update: {columns: [status]}}"#), ("c", #"{update: {columns: "*"}}"#)])
            + Self.entry("ghosts", [("d", #"{insert: {columns: "*"}}"#)])
        return (database, installed, drifted)
    }

    @Test func everyDisagreementIsFoundWithItsFix() throws {
        let (database, installed, drifted) = try driftedDatabase()
        let agreeing = try TriggerInstaller(config: try database.config(tables: installed), logger: Logger(label: "t"))
            .drift(try database.connect())
        #expect(agreeing.isEmpty)

        let config = try database.config(tables: drifted)
        let drift = try TriggerInstaller(config: config, logger: Logger(label: "t")).drift(try database.connect())
        // `a` gained an update trigger it does not have yet: not installed (in full).
        #expect(drift.findings.map(\.kind) == [.notInstalled, .notInstalled, .tableMissing, .unconfigured, .unconfigured])
        #expect(drift.findings.map(\.trigger) == ["a", "c", "d", "herald_e_insert", "herald_b_delete"])
        #expect(drift.findings[4].line.contains("installed trigger herald_b_delete on public.orders is in no configuration"))
        #expect(drift.findings[4].fix.hasSuffix("drop it with herald install-triggers"))
        // On a table the configuration does not name, it may be another configuration's.
        #expect(drift.findings[3].fix.hasSuffix("--prune, unless another configuration on this database delivers it"))
        #expect(drift.findings[2].fix.contains("create it, or remove the trigger from test.yaml"))
        #expect(drift.capture(of: try #require(config.trigger(named: "c"))) == "not_installed")

        // A changed column list keeps the trigger's name but not its fingerprint.
        let changed = try database.config(
            tables: Self.entry("orders", [("a", #"{insert: {columns: "*"}, update: {columns: [status]}}"#)])
                .replacingOccurrences(of: "insert: {columns: \"*\"}, ", with: ""))
        try TriggerInstaller(config: changed, logger: Logger(label: "t")).install(try database.connect())
        let outdated = try TriggerInstaller(
            config: try database.config(tables: Self.entry("orders", [("a", #"{update: {columns: "*"}}"#)])),
            logger: Logger(label: "t")
        ).drift(try database.connect())
        #expect(outdated.findings.map(\.kind) == [.outdated])
    }

    @Test func workerWarnsAtStartAndShowsDriftInReadyzMetricsAndTriggers() throws {
        let (database, _, drifted) = try driftedDatabase()
        let port = try freePort()
        let path = try temporaryFile(
            "database: {url: '\(database.url)'}\nstats: {listen: '127.0.0.1:\(port)'}\ntables:\n\(drifted)")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let worker = try WorkerProcess(configPath: path)
        let base = "http://127.0.0.1:\(port)"
        #expect(try eventually { try httpGet("\(base)/readyz").status == 200 }, "\(worker.log)")
        let readyz = try httpGet("\(base)/readyz").body
        #expect(readyz.hasPrefix("ready\n"))
        #expect(readyz.contains("warning: trigger c on public.orders is not installed: its changes are not captured; run herald install-triggers"))
        #expect(readyz.contains("warning: trigger d: table public.ghosts does not exist"))
        let families = try parsePrometheus(try httpGet("\(base)/metrics").body)
        #expect(StatsEndpointTests.value(families, "herald_trigger_drift", ["kind": "not_installed"]) == 2)
        #expect(StatsEndpointTests.value(families, "herald_trigger_drift", ["kind": "unconfigured"]) == 2)
        #expect(StatsEndpointTests.value(families, "herald_trigger_drift", ["kind": "outdated"]) == 0)
        #expect(worker.log.contains("configuration and database disagree: installed trigger herald_b_delete"))
        #expect(worker.terminate() == 0)

        let triggers = try runHerald(["triggers", "--config", path])
        #expect(triggers.status == 0, "\(triggers.stderr)")
        #expect(triggers.stdout.contains("capture"))
        let rows = triggers.stdout.split(separator: "\n")
        #expect(rows.contains { $0.hasPrefix("c ") && $0.contains("not_installed") })
        #expect(rows.contains { $0.hasPrefix("a ") && $0.contains("not_installed") })
        // One-off events capture nothing: no capture state to show.
        #expect(rows.contains { $0.hasPrefix("@scheduled ") && $0.contains("enabled  -  ") }, "\(triggers.stdout)")
        #expect(triggers.stderr.contains("warning: installed trigger herald_b_delete on public.orders is in no configuration"))
    }
}
