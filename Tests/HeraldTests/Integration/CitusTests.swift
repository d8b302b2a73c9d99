import Foundation
import Testing

@testable import Herald

/// A Citus 13 cluster on this machine: a coordinator and two worker nodes, each a dedicated
/// PostgreSQL 15 with Citus preloaded (`scripts/test` installs Citus with
/// ../shared/citus/install.sh when it is there).
struct CitusCluster {
    let coordinator: DedicatedPostgres
    let workers: [DedicatedPostgres]

    static var available: Bool {
        let libdir = (try? DedicatedPostgres.bash("pg_config --pkglibdir 2>/dev/null || true"))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let candidates = [libdir, "/usr/lib/postgresql/15/lib"].filter { !$0.isEmpty }
        return candidates.contains { FileManager.default.fileExists(atPath: "\($0)/citus.so") }
    }

    init(workers count: Int = 2) throws {
        let settings = ["shared_preload_libraries=citus", "max_prepared_transactions=100"]
        coordinator = try DedicatedPostgres(settings: settings)
        workers = try (0..<count).map { _ in try DedicatedPostgres(settings: settings) }
        for node in [coordinator] + workers {
            try PGConnection(url: node.url).execute(script: "CREATE EXTENSION citus")
        }
        let connection = try PGConnection(url: coordinator.url)
        try connection.query("SELECT citus_set_coordinator_host('127.0.0.1', $1::int)", [String(Self.port(coordinator.url))])
        for worker in workers {
            try connection.query("SELECT citus_add_node('127.0.0.1', $1::int)", [String(Self.port(worker.url))])
        }
    }

    static func port(_ url: String) -> Int { URLComponents(string: url)?.port ?? 5432 }
}

@Suite("Citus", .enabled(if: TestEnvironment.integrationEnabled && CitusCluster.available))
struct CitusTests {
    /// Never break writes: install-triggers refuses a distributed, a reference and a Citus
    /// local table, each named with its kind and what to do, and changes nothing (even with
    /// citus.enable_unsafe_triggers, which would let Citus copy the trigger onto the shards
    /// where herald.event_log is missing); the application's writes to them keep working. A
    /// plain table on the coordinator is captured and delivered as on one server.
    @Test func tablesOnWorkerNodesAreRefusedNamedAndWritesNeverBreak() throws {
        let cluster = try CitusCluster()
        let connection = try PGConnection(url: cluster.coordinator.url)
        try connection.execute(
            script: """
                CREATE TABLE orders (tenant_id int NOT NULL, id int NOT NULL, total int, PRIMARY KEY (tenant_id, id));
                SELECT create_distributed_table('orders', 'tenant_id');
                CREATE TABLE plans (id int PRIMARY KEY, name text);
                SELECT create_reference_table('plans');
                CREATE TABLE notes (id int PRIMARY KEY, body text);
                SELECT citus_add_local_table_to_metadata('notes');
                CREATE TABLE audits (id serial PRIMARY KEY, body text);
                """)
        let receiver = try Receiver()
        func config(_ tables: [String]) throws -> String {
            try temporaryFile(
                """
                database: {url: '\(cluster.coordinator.url)'}
                worker: {fetch_interval_ms: 100, recorder_flush_interval_ms: 5}
                stats: {listen: ""}
                tables:
                """
                    + tables.map { table in
                        """

                          - table: {schema: public, name: \(table)}
                            event_triggers:
                              - name: \(table)_changes
                                definition: {insert: {columns: "*"}}
                                webhook: \(receiver.url("/\(table)"))
                        """
                    }.joined())
        }
        let refused = try runHerald(
            ["install-triggers", "--config", try config(["orders", "plans", "notes", "audits"])],
            environment: ["PGOPTIONS": "-c citus.enable_unsafe_triggers=on"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("table public.orders is a Citus distributed table (hash on tenant_id, 32 shards)"), "\(refused.stderr)")
        #expect(refused.stderr.contains("table public.plans is a Citus reference table"), "\(refused.stderr)")
        #expect(refused.stderr.contains("table public.notes is a Citus local table"), "\(refused.stderr)")
        #expect(refused.stderr.contains("undistribute_table"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("audits"), "\(refused.stderr)")
        // Nothing changed: no schema, no trigger anywhere; the application's writes work.
        #expect(try connection.query("SELECT to_regclass('herald.event_log') IS NULL")[0, 0] == "t")
        #expect(try connection.query("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'herald%'")[0, 0] == "0")
        try connection.execute(
            script: """
                INSERT INTO orders SELECT g % 50, g, g FROM generate_series(1, 1000) g;
                INSERT INTO plans VALUES (1, 'basic');
                INSERT INTO notes VALUES (1, 'hello');
                """)
        #expect(try connection.query("SELECT count(*) FROM orders")[0, 0] == "1000")

        // The plain table on the coordinator works as on one server.
        let accepted = try runHerald(["install-triggers", "--config", try config(["audits"])])
        #expect(accepted.status == 0, "\(accepted.stderr)")
        let worker = try WorkerProcess(configPath: try config(["audits"]))
        try connection.execute(script: "INSERT INTO audits (body) SELECT 'row ' || g FROM generate_series(1, 20) g")
        #expect(try eventually(timeout: 30) { try receiver.requests().count == 20 }, "\(worker.log.suffix(2000))")
        // And writes to the distributed table still work beside it, also in one transaction
        // with a captured write: Citus commits the worker nodes' part with two-phase commit,
        // but the coordinator's own transaction (which sends the capture's NOTIFY) normally.
        try connection.execute(
            script: """
                BEGIN;
                INSERT INTO orders SELECT g % 50, 5000 + g, g FROM generate_series(1, 100) g;
                INSERT INTO audits (body) VALUES ('beside a multi-node write');
                COMMIT;
                """)
        #expect(try connection.query("SELECT count(*) FROM orders")[0, 0] == "1100")
        #expect(try eventually(timeout: 30) { try receiver.requests().count == 21 }, "\(worker.log.suffix(2000))")
        #expect(worker.terminate() == 0)
    }
}
