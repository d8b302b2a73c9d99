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

    /// `joined`: how many of the worker nodes join the cluster now (``join(_:)`` adds the rest).
    init(workers count: Int = 2, joined: Int? = nil) throws {
        let settings = ["shared_preload_libraries=citus", "max_prepared_transactions=100"]
        coordinator = try DedicatedPostgres(settings: settings)
        workers = try (0..<count).map { _ in try DedicatedPostgres(settings: settings) }
        for node in [coordinator] + workers {
            try PGConnection(url: node.url).execute(script: "CREATE EXTENSION citus")
        }
        let connection = try PGConnection(url: coordinator.url)
        try connection.query("SELECT citus_set_coordinator_host('127.0.0.1', $1::int)", [String(Self.port(coordinator.url))])
        for worker in workers.prefix(joined ?? count) { try join(worker) }
    }

    /// Adds a worker node to the cluster (citus_add_node).
    func join(_ worker: DedicatedPostgres) throws {
        try coordinatorConnection().query("SELECT citus_add_node('127.0.0.1', $1::int)", [String(Self.port(worker.url))])
    }

    static func port(_ url: String) -> Int { URLComponents(string: url)?.port ?? 5432 }

    /// `orders`, distributed by `tenant_id` over the nodes that take shards.
    func createOrders() throws {
        try coordinatorConnection().execute(
            script: """
                CREATE TABLE orders (tenant_id int NOT NULL, id int NOT NULL, total int, PRIMARY KEY (tenant_id, id));
                SELECT create_distributed_table('orders', 'tenant_id');
                """)
    }

    /// A connection to the coordinator.
    func coordinatorConnection() throws -> PGConnection { try PGConnection(url: coordinator.url) }

    /// The tenants (0..<count) whose shard of `table` is on `worker`.
    func tenants(of table: String, on worker: DedicatedPostgres, among count: Int = 50) throws -> [Int] {
        let result = try coordinatorConnection().query(
            """
            SELECT t FROM generate_series(0, $3::int - 1) t
            JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column($1, t)
            JOIN pg_dist_node n ON n.groupid = p.groupid
            WHERE n.nodeport = $2::int ORDER BY t
            """, [table, String(Self.port(worker.url)), String(count)])
        return result.column(0).compactMap { $0.flatMap(Int.init) }
    }

    /// Every node's events (coordinator first): id, status, tries.
    func events(on node: DedicatedPostgres) throws -> [(id: Int64, status: String)] {
        let result = try PGConnection(url: node.url).query("SELECT id, status FROM herald.event_log ORDER BY id")
        return (0..<result.rowCount).map { (Int64(result[$0, 0] ?? "") ?? -1, result[$0, 1] ?? "") }
    }
}

/// A receiver's requests for a path, decoded as Hasura's payload.
private struct Delivered: Hashable {
    var tenant: Int
    var id: Int
    var version: Int
    var op: String
    var table: String
    var trigger: String
    var webhookID: String

    static func all(_ receiver: Receiver, path: String) throws -> [Delivered] {
        try receiver.requests().filter { $0.path == path }.compactMap { request in
            guard let json = try JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any],
                let table = json["table"] as? [String: Any], let trigger = json["trigger"] as? [String: Any],
                let event = json["event"] as? [String: Any], let data = event["data"] as? [String: Any],
                let row = (data["new"] as? [String: Any]) ?? (data["old"] as? [String: Any])
            else { return nil }
            return Delivered(
                tenant: row["tenant_id"] as? Int ?? -1, id: row["id"] as? Int ?? -1, version: row["version"] as? Int ?? 0,
                op: event["op"] as? String ?? "", table: "\(table["schema"] ?? "").\(table["name"] ?? "")",
                trigger: trigger["name"] as? String ?? "", webhookID: request.header("webhook-id") ?? "")
        }
    }
}

@Suite("Citus", .serialized, .enabled(if: TestEnvironment.integrationEnabled && CitusCluster.available))
struct CitusTests {
    /// The configuration of one trigger per table, all to `receiver` at `/<table>`.
    private func config(
        _ cluster: CitusCluster, _ receiver: Receiver, tables: [String], path: (String) -> String = { "/\($0)" },
        trigger extra: String = "", operations: String = "{insert: {columns: \"*\"}}"
    ) throws -> String {
        try temporaryFile(
            """
            database: {url: '\(cluster.coordinator.url)'}
            worker: {fetch_interval_ms: 200, recorder_flush_interval_ms: 5, citus_poll_interval_ms: 20}
            stats: {listen: ""}
            tables:
            """
                + tables.map { table in
                    """

                      - table: {schema: public, name: \(table)}
                        event_triggers:
                          - name: \(table)_changes
                            definition: \(operations)
                            webhook: \(receiver.url(path(table)))
                            \(extra)
                    """
                }.joined())
    }

    /// Never break writes: a reference table (whose trigger would run on every node's copy)
    /// is refused, named with what to do, and nothing is installed anywhere; so is an install
    /// while a worker node is down (its log could not be made). Then a distributed table:
    /// 10,000 rows over 50 tenants written through the coordinator, in single-node and
    /// multi-node transactions, and 1,000 more through a worker node: every row's event is
    /// delivered exactly once, with Hasura's payload naming the table the application wrote
    /// (not the shard), ids unique across the cluster. A Citus local table, written in a
    /// transaction that also writes on both worker nodes, is captured too: its capture
    /// sends no NOTIFY, which two-phase commit would refuse.
    @Test func everyRowOfADistributedTableIsDeliveredOnceAndWritesNeverFail() throws {
        let cluster = try CitusCluster()
        let connection = try cluster.coordinatorConnection()
        try connection.execute(
            script: """
                CREATE TABLE orders (tenant_id int NOT NULL, id int NOT NULL, total int, PRIMARY KEY (tenant_id, id));
                SELECT create_distributed_table('orders', 'tenant_id');
                CREATE TABLE plans (id int PRIMARY KEY, name text);
                SELECT create_reference_table('plans');
                CREATE TABLE notes (id int PRIMARY KEY, body text);
                SELECT citus_add_local_table_to_metadata('notes');
                """)
        let receiver = try Receiver()
        let refused = try runHerald(["install-triggers", "--config", try config(cluster, receiver, tables: ["orders", "plans"])])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("table public.plans is a Citus reference table"), "\(refused.stderr)")
        #expect(refused.stderr.contains("captured once per node"), "\(refused.stderr)")
        #expect(try connection.query("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'herald%'")[0, 0] == "0")
        try connection.execute(script: "INSERT INTO plans VALUES (1, 'basic')")

        let path = try config(cluster, receiver, tables: ["orders", "notes"])
        try cluster.workers[1].stop()
        let nodeDown = try runHerald(["install-triggers", "--config", path])
        #expect(nodeDown.status != 0)
        #expect(nodeDown.stderr.contains("Citus worker node 127.0.0.1:\(CitusCluster.port(cluster.workers[1].url)) (group"), "\(nodeDown.stderr)")
        #expect(try connection.query("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'herald%'")[0, 0] == "0")
        try cluster.workers[1].start()
        // The coordinator's session held a connection to the node that was stopped: Citus
        // fails the first statement that uses it, so the application's writes start afresh.
        let writes = try cluster.coordinatorConnection()

        let dryRun = try runHerald(["install-triggers", "--dry-run", "--config", path])
        #expect(dryRun.status == 0, "\(dryRun.stderr)")
        #expect(dryRun.stdout.contains("-- Citus coordinator with 2 worker nodes"), "\(dryRun.stdout)")
        #expect(dryRun.stdout.contains("-- table public.orders: distributed (hash on tenant_id, 32 shards)"), "\(dryRun.stdout)")
        #expect(dryRun.stdout.contains("herald.capture_shard('orders_changes', 'public', 'orders', '')"), "\(dryRun.stdout)")
        let installed = try runHerald(["install-triggers", "--config", path])
        #expect(installed.status == 0, "\(installed.stderr)")
        #expect(installed.stdout.contains("Citus worker node 127.0.0.1:"), "\(installed.stdout)")
        let again = try runHerald(["install-triggers", "--config", path])
        #expect(again.stdout.contains("no changes: 2 triggers up to date"), "\(again.stdout)")
        let check = try runHerald(["check-config", "--config", path])
        #expect(check.stdout.contains("Citus coordinator with 2 worker nodes"), "\(check.stdout)")
        #expect(check.stdout.contains("schema herald version \(SchemaMigrator.latestVersion)"), "\(check.stdout)")

        let worker = try WorkerProcess(configPath: path, readiness: true)
        // Through the coordinator: one multi-node statement, then transactions that each
        // write several tenants (on both nodes) and the local table.
        try writes.execute(script: "INSERT INTO orders SELECT g % 50, g, g FROM generate_series(1, 5000) g")
        for batch in 0..<10 {
            try writes.execute(
                script: """
                    BEGIN;
                    INSERT INTO orders SELECT g % 50, g, g FROM generate_series(\(5001 + batch * 500), \(5500 + batch * 500)) g;
                    INSERT INTO notes VALUES (\(batch), 'beside a multi-node write');
                    COMMIT;
                    """)
        }
        // Through a worker node (Citus syncs its metadata to every node).
        try PGConnection(url: cluster.workers[0].url).execute(
            script: "INSERT INTO orders SELECT g % 50, g, g FROM generate_series(10001, 11000) g")
        #expect(try writes.query("SELECT count(*) FROM orders")[0, 0] == "11000")

        #expect(
            try eventually(timeout: 90) { try receiver.requests().count >= 11_010 },
            "\((try? receiver.requests().count) ?? -1) requests; \(worker.log.suffix(3000))")
        Thread.sleep(forTimeInterval: 1)
        let orders = try Delivered.all(receiver, path: "/orders")
        #expect(orders.count == 11_000)
        #expect(Set(orders.map(\.id)) == Set(1...11_000))
        #expect(orders.allSatisfy { $0.table == "public.orders" && $0.trigger == "orders_changes" && $0.op == "INSERT" })
        #expect(orders.allSatisfy { $0.tenant == $0.id % 50 })
        #expect(Set(orders.map(\.webhookID)).count == 11_000)
        let notes = try receiver.requests().filter { $0.path == "/notes" }
        #expect(notes.count == 10)
        #expect(notes.allSatisfy { $0.body.contains(#""name":"notes""#) }, "\(notes.first?.body ?? "")")

        // Each node's log holds its shards' events, with ids from its own range.
        let onCoordinator = try cluster.events(on: cluster.coordinator)
        let onNodes = try cluster.workers.map { try cluster.events(on: $0) }
        #expect(onCoordinator.count == 10)
        #expect(onNodes.map(\.count).reduce(0, +) == 11_000)
        for (index, events) in onNodes.enumerated() {
            #expect(!events.isEmpty)
            let groups = Set(events.map { $0.id >> 48 })
            #expect(groups.count == 1 && groups.first != 0, "node \(index): groups \(groups)")
        }
        #expect(try eventually(timeout: 10) {
            try (cluster.workers + [cluster.coordinator]).allSatisfy { try cluster.events(on: $0).allSatisfy { $0.status == "delivered" } }
        })

        // The operator's commands reach every node's log: disabling a trigger stops the
        // nodes' claimers too; an event is redelivered from the node that has it; stats
        // list each node.
        let disabled = try runHerald(["disable-trigger", "orders_changes", "--config", path])
        #expect(disabled.status == 0, "\(disabled.stderr)")
        for node in cluster.workers {
            #expect(try PGConnection(url: node.url).query(
                "SELECT enabled FROM herald.trigger_state WHERE trigger_name = 'orders_changes'")[0, 0] == "f")
        }
        try writes.execute(script: "INSERT INTO orders SELECT g % 50, g, g FROM generate_series(20001, 20100) g")
        Thread.sleep(forTimeInterval: 2)
        #expect(try Delivered.all(receiver, path: "/orders").count == 11_000, "nothing sent while disabled")
        #expect(try runHerald(["enable-trigger", "orders_changes", "--config", path]).status == 0)
        #expect(try eventually(timeout: 30) { try Delivered.all(receiver, path: "/orders").count == 11_100 })
        let onSecondNode = try #require(try cluster.events(on: cluster.workers[1]).first?.id)
        let redelivered = try runHerald(["redeliver-event", String(onSecondNode), "--config", path])
        #expect(redelivered.status == 0, "\(redelivered.stderr)")
        #expect(try eventually(timeout: 30) { try Delivered.all(receiver, path: "/orders").count == 11_101 })
        let stats = try runHerald(["stats", "--config", path])
        #expect(stats.status == 0, "\(stats.stderr)")
        #expect(stats.stdout.contains("source default:node2:"), "\(stats.stdout)")

        // The console browses every node's log: the overview lists the nodes, the events
        // page has a log to choose, and an event page is found by the node its id names.
        let console = try #require(worker.readinessURL?.replacingOccurrences(of: "/readyz", with: "/console"))
        let overview = try httpGet(console)
        #expect(overview.status == 200)
        #expect(overview.body.contains("Citus worker nodes") && overview.body.contains("data-node=\"default:node2\""), "\(overview.body)")
        let listed = try httpGet(console + "/events?node=default%3Anode2&trigger=orders_changes")
        #expect(listed.status == 200)
        #expect(listed.body.contains("<option value=\"default:node2\" selected>"), "\(listed.body.prefix(3000))")
        #expect(listed.body.contains("data-event="))
        let detail = try httpGet(console + "/events/\(onSecondNode)")
        #expect(detail.status == 200, "\(detail.body.prefix(2000))")
        #expect(detail.body.contains("orders_changes"))
        let missing = try httpGet(console + "/events/\(onSecondNode + 10_000_000)")
        #expect(missing.status == 404)
        // A log that is not there (an old link to a removed node) is said so, never swapped
        // for the coordinator's.
        let gone = try httpGet(console + "/events?node=default%3Anode9&status=failed")
        #expect(gone.status == 404 && gone.body.contains("no event log named"), "\(gone.body.prefix(500))")

        #expect(worker.terminate() == 0)
        #expect(!worker.log.contains("error"), "\(worker.log.suffix(2000))")
    }

    /// A worker node stopped for 10 s while its events are being delivered, then started
    /// again: writes to the other node's tenants succeed meanwhile and their events are
    /// delivered at once; after the restart every event is delivered, none lost.
    @Test func aWorkerNodeStoppedForTenSecondsLosesNothing() throws {
        let cluster = try CitusCluster()
        let connection = try cluster.coordinatorConnection()
        try cluster.createOrders()
        let receiver = try Receiver()
        // About 45 ms per request (5 ms, then the receiver's second write waits for a delayed
        // ACK), 100 at a time: the 4,000 events take about two seconds.
        let path = try config(cluster, receiver, tables: ["orders"], path: { _ in "/sleep/5" })
        let installed = try runHerald(["install-triggers", "--config", path])
        #expect(installed.status == 0, "\(installed.stderr)")
        let staying = try cluster.tenants(of: "orders", on: cluster.workers[0])
        let stopping = try cluster.tenants(of: "orders", on: cluster.workers[1])
        #expect(!staying.isEmpty && !stopping.isEmpty)
        let worker = try WorkerProcess(configPath: path)
        try connection.execute(script: "INSERT INTO orders SELECT g % 50, g, g FROM generate_series(1, 4000) g")
        #expect(try eventually(timeout: 30) { try receiver.requests().count >= 300 })
        let pendingOnStopped = try PGConnection(url: cluster.workers[1].url).query(
            "SELECT count(*) FROM herald.event_log WHERE status = 'pending'")[0, 0]
        try cluster.workers[1].stop()
        let stoppedAt = Date()
        #expect(pendingOnStopped != "0", "the stopped node still had events to deliver")
        // The other node's tenants: written and delivered while the node is down.
        let list = staying.map(String.init).joined(separator: ",")
        try connection.execute(
            script: "INSERT INTO orders SELECT t, 100000 + g, g FROM unnest(ARRAY[\(list)]) t, generate_series(1, 10) g")
        let whileDown = staying.count * 10
        let deliveredWhileDown = try eventually(timeout: 8) {
            try Set(Delivered.all(receiver, path: "/sleep/5").filter { $0.id > 100_000 }.map { "\($0.tenant)/\($0.id)" }).count
                == whileDown
        }
        #expect(deliveredWhileDown, "\(worker.log.suffix(2000))")
        #expect(Date().timeIntervalSince(stoppedAt) < 10, "delivered before the node came back")
        Thread.sleep(forTimeInterval: max(0, 10 - Date().timeIntervalSince(stoppedAt)))
        try cluster.workers[1].start()

        let total = 4000 + whileDown
        #expect(
            try eventually(timeout: 90) {
                Set(try Delivered.all(receiver, path: "/sleep/5").map { "\($0.tenant)/\($0.id)" }).count == total
            }, "\(worker.log.suffix(3000))")
        #expect(try eventually(timeout: 30) {
            try cluster.workers.allSatisfy { try cluster.events(on: $0).allSatisfy { $0.status == "delivered" } }
        }, "\(worker.log.suffix(3000))")
        let delivered = try Delivered.all(receiver, path: "/sleep/5")
        // At least once: an event whose delivery ended while its node was down is written
        // when the node is back; a duplicate only if its lease ran out first (300 s).
        #expect(delivered.count - total <= 20, "\(delivered.count - total) duplicates")
        #expect(worker.terminate() == 0)
    }

    /// Ordered delivery per key on a distributed table (the key is the distribution column,
    /// so a key's events are on one node): with a receiver that fails every event's first
    /// attempts, each key's events still arrive in the order they were written.
    @Test func eventsOfAKeyArriveInOrderThroughFailures() throws {
        let cluster = try CitusCluster()
        let connection = try cluster.coordinatorConnection()
        try connection.execute(
            script: """
                CREATE TABLE accounts (tenant_id int NOT NULL, id int NOT NULL, version int NOT NULL, PRIMARY KEY (tenant_id, id));
                SELECT create_distributed_table('accounts', 'tenant_id');
                INSERT INTO accounts SELECT t, 1, 0 FROM generate_series(0, 19) t;
                """)
        let receiver = try Receiver()
        let path = try config(
            cluster, receiver, tables: ["accounts"], path: { _ in "/chaos/30" },
            trigger: "retry_conf: {num_retries: 20, interval_sec: 0, timeout_sec: 5}\n        ordering: {key: [tenant_id]}",
            operations: "{update: {columns: \"*\"}}")
        let installed = try runHerald(["install-triggers", "--config", path])
        #expect(installed.status == 0, "\(installed.stderr)")
        #expect(try runHerald(["install-triggers", "--dry-run", "--config", path]).stdout.contains("no changes"))
        let worker = try WorkerProcess(configPath: path)
        for version in 1...15 {
            try connection.execute(script: "UPDATE accounts SET version = \(version)")
        }
        let expected = 20 * 15
        #expect(
            try eventually(timeout: 120) {
                Set(try Delivered.all(receiver, path: "/chaos/30").map { "\($0.tenant)/\($0.version)" }).count == expected
            }, "\(worker.log.suffix(3000))")
        let delivered = try Delivered.all(receiver, path: "/chaos/30")
        #expect(delivered.count > expected, "the receiver failed some attempts")
        for (tenant, requests) in Dictionary(grouping: delivered, by: \.tenant) {
            let versions = requests.map(\.version)
            // A retry repeats a version; the next one is never sent before it succeeds.
            #expect(versions == versions.sorted(), "tenant \(tenant): \(versions)")
        }
        #expect(worker.terminate() == 0)
    }

    /// Shards rebalanced onto a node that had none, with events pending and writes going
    /// on: the moved shards' triggers come with them (Citus copies them), their earlier
    /// events stay in the old node's log and are delivered from there, later ones from the
    /// new node's. Nothing is lost; the shard copy fires no trigger, so no row is captured
    /// twice: duplicates are counted (at-least-once would allow them) and there are none.
    @Test func rebalancingWhileEventsArePendingLosesNothing() throws {
        let cluster = try CitusCluster()
        let connection = try cluster.coordinatorConnection()
        let emptyPort = String(CitusCluster.port(cluster.workers[1].url))
        try connection.query("SELECT citus_set_node_property('127.0.0.1', $1::int, 'shouldhaveshards', false)", [emptyPort])
        try cluster.createOrders()
        #expect(try cluster.tenants(of: "orders", on: cluster.workers[1]).isEmpty)
        let receiver = try Receiver()
        let path = try config(cluster, receiver, tables: ["orders"], path: { _ in "/sleep/2" })
        #expect(try runHerald(["install-triggers", "--config", path]).status == 0)
        // Pending before the move: no worker runs yet.
        try connection.execute(script: "INSERT INTO orders SELECT g % 50, g, g FROM generate_series(1, 3000) g")
        let worker = try WorkerProcess(
            configPath: path, environment: ["HERALD_WORKER_HTTP_POOL_SIZE": "8", "HERALD_WORKER_HTTP_PER_HOST_LIMIT": "8"])
        try connection.query("SELECT citus_set_node_property('127.0.0.1', $1::int, 'shouldhaveshards', true)", [emptyPort])
        // Writes go on during the rebalance, from a connection of their own.
        let writer = Thread {
            let writes = try? PGConnection(url: cluster.coordinator.url)
            for g in 3001...4000 { _ = try? writes?.query("INSERT INTO orders VALUES ($1::int % 50, $1::int, 0)", [String(g)]) }
        }
        writer.start()
        try connection.query("SELECT citus_rebalance_start(shard_transfer_mode := 'block_writes')")
        try connection.query("SELECT citus_rebalance_wait()")
        #expect(try eventually(timeout: 60) { try connection.query("SELECT count(*) FROM orders")[0, 0] == "4000" })
        #expect(try !cluster.tenants(of: "orders", on: cluster.workers[1]).isEmpty, "the rebalance moved shards")
        try connection.execute(script: "INSERT INTO orders SELECT g % 50, g, g FROM generate_series(4001, 5000) g")
        #expect(
            try eventually(timeout: 120) { Set(try Delivered.all(receiver, path: "/sleep/2").map(\.id)).count == 5000 },
            "\(Set((try? Delivered.all(receiver, path: "/sleep/2")) ?? []).count) delivered rows of 5000; \(worker.log.suffix(3000))")
        let delivered = try Delivered.all(receiver, path: "/sleep/2")
        #expect(delivered.count == 5000, "\(delivered.count - 5000) duplicates")
        // Events captured after the move are in the new node's log.
        #expect(try !cluster.events(on: cluster.workers[1]).isEmpty)
        #expect(worker.terminate() == 0)
    }

    /// Nodes followed while the worker runs: a node added to the cluster gets Herald's
    /// schema from the worker (before any shard moves there, so writes never fail) and its
    /// own claimer; after a rebalance its shards' events are delivered from its log. A node
    /// drained and removed while its log still holds pending events, with the worker
    /// restarted meanwhile: those events are delivered once, and then the node is forgotten.
    @Test func aNodeAddedOrRemovedWhileRunningIsFollowedWithoutARestart() throws {
        let cluster = try CitusCluster(workers: 2, joined: 1)
        let connection = try cluster.coordinatorConnection()
        try cluster.createOrders()
        let receiver = try Receiver()
        let path = try config(cluster, receiver, tables: ["orders"])
        #expect(try runHerald(["install-triggers", "--config", path]).status == 0)
        let worker = try WorkerProcess(configPath: path, environment: ["HERALD_WORKER_CITUS_NODE_WATCH_SECONDS": "1"])
        try connection.execute(script: "INSERT INTO orders SELECT g % 50, g, g FROM generate_series(1, 1000) g")
        #expect(try eventually(timeout: 30) { try Delivered.all(receiver, path: "/orders").count == 1000 })

        try cluster.join(cluster.workers[1])
        let joined = cluster.workers[1]
        #expect(
            try eventually(timeout: 30) {
                try PGConnection(url: joined.url).query("SELECT to_regclass('herald.event_log') IS NOT NULL")[0, 0] == "t"
            }, "\(worker.log.suffix(2000))")
        #expect(try eventually(timeout: 10) { worker.log.contains("new Citus worker node: claiming from its log") })
        try connection.query("SELECT citus_rebalance_start(shard_transfer_mode := 'block_writes')")
        try connection.query("SELECT citus_rebalance_wait()")
        #expect(try !cluster.tenants(of: "orders", on: joined).isEmpty, "the rebalance moved shards to the new node")
        let writes = try cluster.coordinatorConnection()
        try writes.execute(script: "INSERT INTO orders SELECT g % 50, g, g FROM generate_series(1001, 2000) g")
        #expect(
            try eventually(timeout: 30) { Set(try Delivered.all(receiver, path: "/orders").map(\.id)) == Set(1...2000) },
            "\(worker.log.suffix(3000))")
        let onJoined = try cluster.events(on: joined)
        #expect(!onJoined.isEmpty && onJoined.allSatisfy { $0.status == "delivered" })
        #expect(Set(onJoined.map { $0.id >> 48 }).count == 1 && onJoined[0].id >> 48 != 0, "ids from the node's own range")

        // Removed with events still pending in its log (the trigger disabled everywhere, so
        // none is sent), and the worker restarted meanwhile: the new worker still claims from
        // the removed node's log (herald.citus_nodes remembers it), then forgets the node.
        #expect(try runHerald(["disable-trigger", "orders_changes", "--config", path]).status == 0)
        try writes.execute(script: "INSERT INTO orders SELECT g % 50, g, g FROM generate_series(2001, 2100) g")
        let pendingThere = try cluster.events(on: joined).filter { $0.status == "pending" }.count
        #expect(pendingThere > 0)
        #expect(worker.terminate() == 0)
        let port = String(CitusCluster.port(joined.url))
        try writes.query("SELECT citus_drain_node('127.0.0.1', $1::int, shard_transfer_mode := 'block_writes')", [port])
        try writes.query("SELECT citus_remove_node('127.0.0.1', $1::int)", [port])
        let check = try runHerald(["check-config", "--config", path])
        #expect(check.stdout.contains("removed node 127.0.0.1:\(port)"), "\(check.stdout)")
        let restarted = try WorkerProcess(configPath: path, environment: ["HERALD_WORKER_CITUS_NODE_WATCH_SECONDS": "1"])
        #expect(try runHerald(["enable-trigger", "orders_changes", "--config", path]).status == 0)
        #expect(
            try eventually(timeout: 30) { Set(try Delivered.all(receiver, path: "/orders").map(\.id)) == Set(1...2100) },
            "\(restarted.log.suffix(3000))")
        #expect(try Delivered.all(receiver, path: "/orders").count == 2100, "no duplicates")
        #expect(
            try eventually(timeout: 15) {
                try connection.query("SELECT count(*) FROM herald.citus_nodes WHERE port = $1::int", [port])[0, 0] == "0"
            },
            "\(restarted.log.suffix(2000))")
        #expect(restarted.log.contains("forgotten"))
        #expect(restarted.terminate() == 0)
    }

    /// A shared rate limit holds across the cluster: every node's claimer reserves its
    /// tokens from the coordinator's bucket (a node's own would let each node send the whole
    /// rate). 70 events over both nodes at 10/s with a burst of 10 take about 6 s.
    @Test func aSharedRateLimitHoldsAcrossTheNodes() throws {
        let cluster = try CitusCluster()
        let connection = try cluster.coordinatorConnection()
        try cluster.createOrders()
        let receiver = try Receiver()
        let path = try config(
            cluster, receiver, tables: ["orders"], path: { _ in "/fast" },
            trigger: "rate_limit: {per_second: 10, burst: 10, shared: true}")
        #expect(try runHerald(["install-triggers", "--config", path]).status == 0)
        try connection.execute(script: "INSERT INTO orders SELECT g % 50, g, g FROM generate_series(1, 70) g")
        #expect(try cluster.workers.allSatisfy { try !cluster.events(on: $0).isEmpty }, "events on both nodes")
        let worker = try WorkerProcess(configPath: path)
        #expect(try eventually(timeout: 30) { try Delivered.all(receiver, path: "/fast").count == 70 }, "\(worker.log.suffix(2000))")
        let times = try receiver.requests().filter { $0.path == "/fast" }.map(\.time).sorted()
        let span = times[69] - times[0]
        print("shared rate limit 10/s, burst 10, two Citus nodes: 70 events in \(span) s")
        #expect(span > 5.0 && span < 8.5, "70 events took \(span) s")
        #expect(worker.terminate() == 0)
    }

    /// One circuit breaker per trigger across the cluster: a receiver failing every request
    /// opens it after `min_requests` failures, whichever node's events they were, and every
    /// node's events are held back; each node's log records the breaker open.
    @Test func oneBreakerHoldsEveryNodesEventsBack() throws {
        let cluster = try CitusCluster()
        let connection = try cluster.coordinatorConnection()
        try cluster.createOrders()
        let receiver = try Receiver()
        let path = try config(
            cluster, receiver, tables: ["orders"], path: { _ in "/status/503" },
            trigger: "circuit_breaker: {failure_ratio: 0.5, min_requests: 6, window_sec: 60, open_sec: 60}")
        #expect(try runHerald(["install-triggers", "--config", path]).status == 0)
        try connection.execute(script: "INSERT INTO orders SELECT g % 50, g, g FROM generate_series(1, 200) g")
        // Two requests at a time, so the breaker's decision is not outrun by a full pool.
        let worker = try WorkerProcess(
            configPath: path, environment: ["HERALD_WORKER_HTTP_POOL_SIZE": "2", "HERALD_WORKER_HTTP_PER_HOST_LIMIT": "2"])
        let open = try eventually(timeout: 30) {
            try cluster.workers.allSatisfy {
                try PGConnection(url: $0.url).query(
                    "SELECT circuit_state FROM herald.trigger_state WHERE trigger_name = 'orders_changes'")[0, 0] == "open"
            }
        }
        #expect(open, "\(worker.log.suffix(3000))")
        Thread.sleep(forTimeInterval: 2)
        let sent = try receiver.requests().filter { $0.path == "/status/503" }.count
        // Separate breakers per node would let each node send its own six.
        #expect(sent >= 6 && sent <= 9, "\(sent) requests before the breaker held every node back")
        #expect(worker.terminate() == 0)
    }
}
