import Foundation
import Synchronization
import Testing

@testable import Herald

/// `herald backfill` against a real PostgreSQL: interrupted and resumed with every row
/// exactly once, writers never waiting, and key order kept for ordered triggers.
@Suite("Backfill", .enabled(if: TestEnvironment.integrationEnabled))
struct BackfillTests {
    static func configYAML(_ database: TestDatabase, trigger: String = "") -> String {
        """
        database: {url: '\(database.url)'}
        tables:
          - table: {schema: public, name: items}
            event_triggers:
              - name: items_sync
                definition: {insert: {columns: "*"}}
                webhook: http://127.0.0.1:9/hook
        \(trigger)
        """
    }

    /// Times single-row updates on another connection until stopped: the longest any
    /// writer waited while the backfill ran.
    final class WriterProbe: @unchecked Sendable {
        private let state = Mutex<(stop: Bool, longest: Double, writes: Int, error: String?)>((false, 0, 0, nil))
        private let done = DispatchSemaphore(value: 0)

        init(url: String, rows: Int) {
            Thread.detachNewThread { [self] in
                defer { done.signal() }
                do {
                    let connection = try PGConnection(url: url)
                    while !state.withLock({ $0.stop }) {
                        let started = Date()
                        try connection.query(
                            "UPDATE items SET note = note || '.' WHERE id = $1", [String(Int.random(in: 1...rows))])
                        let took = Date().timeIntervalSince(started)
                        state.withLock {
                            $0.longest = max($0.longest, took)
                            $0.writes += 1
                        }
                        Thread.sleep(forTimeInterval: 0.002)
                    }
                } catch {
                    state.withLock { $0.error = "\(error)" }
                }
            }
        }

        func stop() -> (longest: Double, writes: Int, error: String?) {
            state.withLock { $0.stop = true }
            done.wait()
            return state.withLock { ($0.longest, $0.writes, $0.error) }
        }
    }

    @Test func interruptedHalfwayAndResumedEveryRowExactlyOnce() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(
            script: """
                CREATE TABLE items (id bigint PRIMARY KEY, note text NOT NULL DEFAULT '');
                INSERT INTO items (id) SELECT g FROM generate_series(1, 200000) g;
                ANALYZE items;
                """)
        let path = try temporaryFile(Self.configYAML(database))
        #expect(try runHerald(["install-triggers", "--config", path]).status == 0)

        let writers = WriterProbe(url: database.url, rows: 200_000)
        let first = try WorkerProcess(configPath: path, command: ["backfill", "items_sync", "--batch", "2000"])
        let halfway = try eventually(timeout: 120) {
            Int(try database.values("SELECT coalesce(max(rows_done), 0) FROM herald.backfills")[0] ?? "") ?? 0 >= 100_000
        }
        first.killHard()
        #expect(halfway)
        let doneAtKill = Int(try database.values("SELECT rows_done FROM herald.backfills")[0] ?? "") ?? 0
        #expect(doneAtKill < 200_000, "the first run was to be interrupted before the end")

        let second = try runHerald(["backfill", "items_sync", "--config", path, "--batch", "5000"])
        let probe = writers.stop()
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("resuming after \(doneAtKill) rows done earlier"))
        #expect(second.stdout.contains("\(doneAtKill) rows were done by an earlier run, 200000 in all"))

        let counts = try database.firstRow(
            """
            SELECT count(*), count(DISTINCT payload->'data'->'new'->>'id'), min((payload->'data'->'new'->>'id')::int),
                   max((payload->'data'->'new'->>'id')::int), bool_and(payload->>'op' = 'MANUAL' AND payload->'data'->'old' = 'null')::text
            FROM herald.event_log WHERE trigger_name = 'items_sync'
            """)
        let duplicates = try database.firstRow(
            "SELECT min(i), max(i), count(*) FROM (SELECT (payload->'data'->'new'->>'id')::int i FROM herald.event_log WHERE trigger_name = 'items_sync' GROUP BY 1 HAVING count(*) > 1) d")
        #expect(counts == ["200000", "200000", "1", "200000", "true"], "duplicates: \(duplicates)")
        #expect(probe.error == nil)
        #expect(probe.writes > 50)
        #expect(probe.longest < 0.1, "a writer waited \(probe.longest) s")

        // Finished: the same backfill again is refused, --restart runs it again.
        let again = try runHerald(["backfill", "items_sync", "--config", path])
        #expect(again.status == 1)
        #expect(again.stderr.contains("pass --restart to backfill again"))
    }

    @Test func whereFilterConcurrencyAndKeyOrder() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(
            script: """
                CREATE TABLE items (id bigint PRIMARY KEY, note text NOT NULL DEFAULT '');
                INSERT INTO items (id) SELECT g FROM generate_series(1, 20000) g;
                CREATE TABLE accounts (tenant text, id int, plan text, PRIMARY KEY (tenant, id));
                INSERT INTO accounts SELECT 't' || (g % 3), g, CASE WHEN g % 2 = 0 THEN 'pro' ELSE 'free' END
                  FROM generate_series(1, 40) g;
                """)
        let ordered = """
              - table: accounts
                event_triggers:
                  - name: accounts_pro
                    definition: {insert: {columns: "*"}, update: {columns: "*"}}
                    webhook: http://127.0.0.1:9/hook
                    ordering: {key: [tenant]}
                    filter: NEW.plan = 'pro'
            """
        let path = try temporaryFile(Self.configYAML(database, trigger: ordered))
        #expect(try runHerald(["install-triggers", "--config", path]).status == 0)

        // Two processes on the same backfill at once: each batch is taken by one of them.
        let one = try WorkerProcess(configPath: path, command: ["backfill", "items_sync", "--batch", "500", "--where", "id > 1000"])
        let two = try WorkerProcess(configPath: path, command: ["backfill", "items_sync", "--batch", "500", "--where", "id > 1000"])
        #expect(one.waitForExit(timeout: 120) == 0, "\(one.log)")
        #expect(two.waitForExit(timeout: 120) == 0, "\(two.log)")
        #expect(
            try database.firstRow(
                "SELECT count(*), count(DISTINCT payload->'data'->'new'->>'id'), min((payload->'data'->'new'->>'id')::int) FROM herald.event_log WHERE trigger_name = 'items_sync'")
                == ["19000", "19000", "1001"])

        // An ordered, filtered trigger: a pending captured event of key t1 comes first.
        try connection.execute(script: "UPDATE accounts SET plan = 'pro' WHERE id = 1")
        let typo = try runHerald(["backfill", "accounts_pro", "--config", path, "--where", "plna = 'x'"])
        #expect(typo.status == 1)
        #expect(typo.stderr.contains("the backfill condition is not valid on table public.accounts"))
        #expect(typo.stderr.contains(#"column "plna" does not exist"#))
        let result = try runHerald(["backfill", "accounts_pro", "--config", path, "--batch", "7"])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try database.values(
            """
            SELECT string_agg(payload->>'op' || ':' || (payload->'data'->'new'->>'id'), ',' ORDER BY id)
            FROM herald.event_log WHERE trigger_name = 'accounts_pro' AND ordering_key = '["t1"]'
            """)
        // Row 1 (tenant t1) was captured first; the backfill adds the pro rows of t1 (the
        // filter keeps even ids, and row 1 is now pro too) behind it, in key order.
        #expect(rows == ["UPDATE:1,MANUAL:1,MANUAL:4,MANUAL:10,MANUAL:16,MANUAL:22,MANUAL:28,MANUAL:34,MANUAL:40"])
    }
}
