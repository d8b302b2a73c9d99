import Foundation
import Logging
import Testing

@testable import Herald

/// `install-triggers` against a real PostgreSQL: idempotence, atomicity, quoting, upgrades.
@Suite("Install triggers", .enabled(if: TestEnvironment.integrationEnabled))
struct InstallTests {
    let logger = Logger(label: "test")

    static func trigger(_ name: String, table: String = "{schema: public, name: orders}", definition: String) -> String {
        """
          - table: \(table)
            event_triggers:
              - name: \(name)
                definition: \(definition)
                webhook: http://127.0.0.1:9/hook
        """
    }

    /// Triggers on the application's tables (Herald's own log has its wake trigger).
    func installedTriggers(_ connection: PGConnection) throws -> [String] {
        try connection.query(
            """
            SELECT tgname FROM pg_trigger
            WHERE NOT tgisinternal AND tgrelid NOT IN (
                SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'herald')
            ORDER BY tgname
            """
        ).column(0).compactMap { $0 }
    }

    @Test func installingTwiceChangesNothingTheSecondTime() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(script: "CREATE TABLE orders (id int PRIMARY KEY, status text)")
        let config = try database.config(
            tables: Self.trigger("a", definition: #"{insert: {columns: "*"}, update: {columns: [status]}}"#))
        let first = try TriggerInstaller(config: config, logger: logger).install(connection)
        #expect(first.migrations.map(\.version) == Array(1...SchemaMigrator.latestVersion))
        #expect(first.create.map(\.name) == ["herald_a_insert", "herald_a_update"])
        // A plain log's payload index keeps GIN's pending list short (schema version 13).
        #expect(
            try database.values("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'herald.event_log_payload'::regclass")
                == ["gin_pending_list_limit=64"])
        let second = try TriggerInstaller(config: config, logger: logger).install(connection)
        #expect(second.isEmpty)
        #expect(second.unchanged.count == 2)
        #expect(try installedTriggers(connection) == ["herald_a_insert", "herald_a_update"])
    }

    @Test func removedTriggerIsDroppedAndForeignTriggersAreKept() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(
            script: """
                CREATE TABLE orders (id int PRIMARY KEY, status text);
                CREATE FUNCTION app_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
                CREATE TRIGGER herald_lookalike AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION app_audit();
                """)
        let both = try database.config(
            tables: Self.trigger("a", definition: #"{insert: {columns: "*"}}"#)
                + "\n"
                + Self.trigger("b", definition: #"{delete: {columns: "*"}}"#).replacingOccurrences(
                    of: "{schema: public, name: orders}", with: "{schema: public, name: orders}"))
        try TriggerInstaller(config: both, logger: logger).install(connection)
        #expect(try installedTriggers(connection) == ["herald_a_insert", "herald_b_delete", "herald_lookalike"])

        let onlyA = try database.config(tables: Self.trigger("a", definition: #"{insert: {columns: "*"}}"#))
        let plan = try TriggerInstaller(config: onlyA, logger: logger).install(connection)
        #expect(plan.drop.map(\.name) == ["herald_b_delete"])
        #expect(try installedTriggers(connection) == ["herald_a_insert", "herald_lookalike"])
    }

    @Test func changedDefinitionReplacesTheTrigger() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(script: "CREATE TABLE orders (id int PRIMARY KEY, status text, note text)")
        try TriggerInstaller(
            config: try database.config(tables: Self.trigger("a", definition: #"{update: {columns: [status]}}"#)),
            logger: logger
        ).install(connection)
        let plan = try TriggerInstaller(
            config: try database.config(tables: Self.trigger("a", definition: #"{update: {columns: [note]}}"#)),
            logger: logger
        ).install(connection)
        #expect(plan.replace.map(\.name) == ["herald_a_update"])
        try connection.execute(script: "INSERT INTO orders VALUES (1, 'new', ''); UPDATE orders SET note = 'x';")
        #expect(try connection.query("SELECT count(*) FROM herald.event_log")[0, 0] == "1")
    }

    @Test func unknownTableFailsNamingItAndChangesNothing() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(script: "CREATE TABLE orders (id int PRIMARY KEY)")
        let config = try database.config(
            tables: Self.trigger("a", definition: #"{insert: {columns: "*"}}"#) + "\n"
                + Self.trigger("b", table: "{schema: public, name: missing_table}", definition: #"{insert: {columns: "*"}}"#))
        #expect {
            try TriggerInstaller(config: config, logger: logger).install(connection)
        } throws: { error in
            let error = error as? InstallError
            return error?.code == .tableNotFound && error?.description == "table public.missing_table does not exist (trigger b)"
        }
        #expect(try installedTriggers(connection).isEmpty)
        #expect(try connection.query("SELECT to_regnamespace('herald') IS NULL")[0, 0] == "t")
    }

    @Test func unknownColumnFailsNamingItAndChangesNothing() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(script: "CREATE TABLE orders (id int PRIMARY KEY, status text)")
        let config = try database.config(
            tables: Self.trigger("a", definition: #"{insert: {columns: "*"}, update: {columns: [status, stauts]}}"#))
        #expect {
            try TriggerInstaller(config: config, logger: logger).install(connection)
        } throws: { error in
            let error = error as? InstallError
            return error?.code == .columnNotFound && error?.column == "stauts"
                && error?.description == #"table public.orders has no column "stauts" (trigger a, definition.update.columns)"#
        }
        #expect(try installedTriggers(connection).isEmpty)
    }

    @Test func namesThatNeedQuotingWork() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(
            script: #"""
                CREATE SCHEMA "Sales Data";
                CREATE TABLE "Sales Data"."Order ""Items""" ("Item ID" int PRIMARY KEY, "Total Amount" numeric, "it's" text);
                """#)
        let config = try database.config(
            tables: Self.trigger(
                "quoted", table: #"{schema: "Sales Data", name: "Order \"Items\""}"#,
                definition: #"{insert: {columns: "*", payload: ["Item ID", "it's"]}, update: {columns: ["Total Amount"]}}"#))
        try TriggerInstaller(config: config, logger: logger).install(connection)
        try connection.execute(
            script: #"""
                INSERT INTO "Sales Data"."Order ""Items""" VALUES (1, 9.5, 'x');
                UPDATE "Sales Data"."Order ""Items""" SET "it's" = 'y';
                UPDATE "Sales Data"."Order ""Items""" SET "Total Amount" = 10;
                """#)
        let rows = try connection.query(
            "SELECT schema_name, table_name, payload->>'op', payload->'data'->>'new' FROM herald.event_log ORDER BY id")
        #expect(rows.rowCount == 2)
        #expect(rows[0, 0] == "Sales Data")
        #expect(rows[0, 1] == #"Order "Items""#)
        #expect(rows[0, 3] == #"{"it's": "x", "Item ID": 1}"#)
        #expect(rows[1, 2] == "UPDATE")
        #expect(try TriggerInstaller(config: config, logger: logger).install(connection).isEmpty)
    }

    @Test func dryRunPrintsTheSQLAndChangesNothing() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(script: "CREATE TABLE orders (id int PRIMARY KEY)")
        let config = try database.config(tables: Self.trigger("a", definition: #"{insert: {columns: "*"}}"#))
        let plan = try TriggerInstaller(config: config, logger: logger).plan(connection)
        #expect(plan.script.contains("CREATE TABLE herald.event_log"))
        #expect(plan.script.contains(#"CREATE TRIGGER "herald_a_insert" AFTER INSERT ON "public"."orders""#))
        #expect(plan.script.hasPrefix("BEGIN;"))
        #expect(plan.script.hasSuffix("COMMIT;"))
        #expect(try connection.query("SELECT to_regnamespace('herald') IS NULL")[0, 0] == "t")
        #expect(try installedTriggers(connection).isEmpty)
    }

    @Test func newerSchemaVersionUpgradesInPlaceKeepingEvents() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        _ = try connection.transaction { try SchemaMigrator.apply(connection, upTo: 1) }
        #expect(try SchemaMigrator.currentVersion(connection) == 1)
        try connection.execute(
            script: """
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload)
                VALUES ('t', 'public', 'x', '{"op": "MANUAL"}')
                """)
        let applied = try connection.transaction { try SchemaMigrator.apply(connection) }
        #expect(applied.map(\.version) == Array(2...SchemaMigrator.latestVersion))
        #expect(try SchemaMigrator.currentVersion(connection) == SchemaMigrator.latestVersion)
        #expect(try connection.query("SELECT count(*) FROM herald.event_log")[0, 0] == "1")
        #expect(try connection.transaction { try SchemaMigrator.apply(connection) }.isEmpty)
    }

    @Test func eventsFromBeforeRandomLookingIDsKeepTheIDReceiversSaw() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        _ = try connection.transaction { try SchemaMigrator.apply(connection, upTo: 4) }
        try connection.execute(
            script: """
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, status)
                VALUES ('t', 'public', 'x', '{}', 'pending'), ('t', 'public', 'x', '{}', 'failed'),
                       ('t', 'public', 'x', '{}', 'delivered')
                """)
        let installation = try #require(UUID(uuidString: connection.query("SELECT id::text FROM herald.installation")[0, 0] ?? ""))
        _ = try connection.transaction { try SchemaMigrator.apply(connection) }
        let ids = try connection.query("SELECT imported_id::text FROM herald.event_log ORDER BY id").column(0)
        #expect(ids == [Self.versionFourID(installation, 1), Self.versionFourID(installation, 2), nil])
        let admin = try EventAdmin(connection: connection)
        #expect(try admin.publicID(1) == Self.versionFourID(installation, 1))
        #expect(try admin.publicID(3) == EventID.uuid(key: admin.key, number: 3))
        #expect(try admin.redeliver(Self.versionFourID(installation, 2), force: false) == .queued(number: 2))
    }

    /// Schema 20 switches ids to SipHash rounds only for events numbered after it: an event
    /// already in the log (or whose number was handed out) keeps its version 1 id, which
    /// still finds it; a new installation gives every event a version 2 id.
    @Test func eventsFromBeforeSchemaTwentyKeepTheirVersionOneIDs() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        _ = try connection.transaction { try SchemaMigrator.apply(connection, upTo: 19) }
        try connection.execute(
            script: """
                INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload)
                SELECT 't', 'public', 'x', '{}' FROM generate_series(1, 3)
                """)
        let keyBytes = try connection.query("SELECT id_key FROM herald.installation", resultFormat: .binary)
        let oldKey = EventIDKey(bytes: try #require(keyBytes.bytes(0, 0)), v2From: .max)
        let oldIDs = (Int64(1)...3).map { EventID.uuid(key: oldKey, number: $0) }
        _ = try connection.transaction { try SchemaMigrator.apply(connection) }
        try connection.execute(
            script: "INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload) VALUES ('t', 'public', 'x', '{}')")
        let admin = try EventAdmin(connection: connection)
        let boundary = try connection.query("SELECT event_id_v2_from FROM herald.installation").decode(Int64.self, row: 0, column: 0)
        #expect(boundary > 3, "the boundary must be past every number handed out: \(boundary)")
        #expect(try (Int64(1)...3).map { try admin.publicID($0) } == oldIDs)
        #expect(try admin.number(for: oldIDs[1]) == 2)
        let newest = try connection.query("SELECT max(id) FROM herald.event_log").decode(Int64.self, row: 0, column: 0)
        let newID = try admin.publicID(newest)
        #expect(newID == EventID.uuid(key: EventIDKey(bytes: oldKey.bytes, v2From: 1), number: newest))
        #expect(try admin.number(for: newID) == newest)

        let fresh = try TestDatabase()
        let freshConnection = try fresh.connect()
        _ = try freshConnection.transaction { try SchemaMigrator.apply(freshConnection) }
        #expect(try freshConnection.query("SELECT event_id_v2_from FROM herald.installation")[0, 0] == "1")
    }

    /// Schema 21 takes the log's CHECK constraints off every captured insert: from a plain
    /// log, and from a log partitioned before it, whose partitions each hold a copy that
    /// dropping the parent's would leave. Captures and outcomes still write the log after it.
    @Test func schemaTwentyOneLeavesNoCheckOnTheLogOrAnyPartition() throws {
        func checks(_ connection: PGConnection) throws -> [String] {
            try connection.query(
                """
                SELECT c.conrelid::regclass::text || ' ' || c.conname FROM pg_constraint c
                WHERE c.contype = 'c' AND (c.conrelid = 'herald.event_log'::regclass
                    OR c.conrelid IN (SELECT relid FROM pg_partition_tree('herald.event_log')))
                ORDER BY 1
                """
            ).column(0).compactMap { $0 }
        }
        let insert = "INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload) VALUES ('t', 'public', 'x', '{}')"

        let plain = try TestDatabase()
        let plainConnection = try plain.connect()
        _ = try plainConnection.transaction { try SchemaMigrator.apply(plainConnection, upTo: 20) }
        #expect(try checks(plainConnection) == ["herald.event_log event_log_status_check", "herald.event_log event_log_tries_check"])
        _ = try plainConnection.transaction { try SchemaMigrator.apply(plainConnection) }
        #expect(try checks(plainConnection) == [])
        try plainConnection.execute(script: insert)

        let partitioned = try TestDatabase()
        let connection = try partitioned.connect()
        _ = try connection.transaction { try SchemaMigrator.apply(connection, upTo: 20) }
        try connection.execute(script: insert)
        _ = try PartitionConversion.install(PartitioningSettings(intervalSeconds: 3600, premake: 2), connection)
        let before = try checks(connection)
        #expect(
            before.filter { $0.hasSuffix("_status_check") }.count >= 4,
            "the parent, the legacy partition and the premade ones each hold both: \(before)")
        _ = try connection.transaction { try SchemaMigrator.apply(connection) }
        // The legacy partition keeps the range check its attachment was proved with: it holds
        // the rows from before the conversion, and no capture lands in it.
        let after = try checks(connection)
        #expect(after == ["herald.event_log_legacy event_log_before_partitioning"], "\(after)")
        try connection.execute(script: insert)
        try connection.execute(script: "UPDATE herald.event_log SET status = 'delivered', tries = tries + 1, finished_at = now()")
        #expect(try connection.query("SELECT count(*) FROM herald.event_log WHERE status = 'delivered'")[0, 0] == "2")
    }

    /// The payload id schema version 4 gave event `number`: installation bytes 0-7 and the
    /// number, as a version 8 UUID.
    static func versionFourID(_ installation: UUID, _ number: Int64) -> String {
        var bytes = withUnsafeBytes(of: installation.uuid) { Array($0) }
        for index in 0..<8 { bytes[8 + index] = UInt8(truncatingIfNeeded: UInt64(number) >> (8 * (7 - index))) }
        bytes[6] = (bytes[6] & 0x0F) | 0x80
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return UUID(uuid: (
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
            bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
        )).uuidString.lowercased()
    }

    @Test func commandLineReportsChangesThenNoChanges() throws {
        let database = try TestDatabase()
        try database.connect().execute(script: "CREATE TABLE orders (id int PRIMARY KEY)")
        let path = try temporaryFile(
            "database: {url: '\(database.url)'}\ntables:\n" + Self.trigger("a", definition: #"{insert: {columns: "*"}}"#))
        let first = try runHerald(["install-triggers", "--config", path])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("created trigger herald_a_insert on public.orders"))
        let second = try runHerald(["install-triggers", "--config", path])
        #expect(second.stdout.contains("no changes: 1 triggers up to date"))
        let dryRun = try runHerald(["install-triggers", "--config", path, "--dry-run"])
        #expect(dryRun.stdout.contains("no changes"))
    }

    @Test func commandLineNamesTheCulpritAndExitsNonZero() throws {
        let database = try TestDatabase()
        let path = try temporaryFile(
            "database: {url: '\(database.url)'}\ntables:\n"
                + Self.trigger("a", table: "{schema: public, name: nope}", definition: #"{insert: {columns: "*"}}"#))
        let result = try runHerald(["install-triggers", "--config", path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("table public.nope does not exist (trigger a)"))

        let badConfig = try temporaryFile("database: {url: 'postgres://x'}\nworker: {fetch_batch_size: 0}\n")
        let config = try runHerald(["check-config", "--config", badConfig])
        #expect(config.status == 78)
        #expect(config.stderr.contains("\(badConfig):2: worker.fetch_batch_size: must be at least 1 (got 0)"))
    }

    @Test func secondConfigOnTheSameDatabaseKeepsTheFirstConfigsTriggersUnlessPruned() throws {
        let database = try TestDatabase()
        try database.connect().execute(script: "CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE users (id int PRIMARY KEY)")
        let first = try temporaryFile(
            "database: {url: '\(database.url)'}\ntables:\n" + Self.trigger("a", definition: #"{insert: {columns: "*"}}"#))
        let second = try temporaryFile(
            "database: {url: '\(database.url)'}\ntables:\n"
                + Self.trigger("b", table: "{schema: public, name: users}", definition: #"{insert: {columns: "*"}}"#))
        #expect(try runHerald(["install-triggers", "--config", first]).status == 0)
        let kept = try runHerald(["install-triggers", "--config", second])
        #expect(kept.status == 0, "\(kept.stderr)")
        #expect(kept.stderr.contains("kept Herald trigger herald_a_insert on public.orders"))
        #expect(kept.stderr.contains("--prune"))
        #expect(try installedTriggers(database.connect()) == ["herald_a_insert", "herald_b_insert"])
        let pruned = try runHerald(["install-triggers", "--config", second, "--prune"])
        #expect(pruned.stdout.contains("dropped trigger herald_a_insert on public.orders"))
        #expect(try installedTriggers(database.connect()) == ["herald_b_insert"])
    }

    @Test func everyMissingTableAndColumnIsNamedInOneRun() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.execute(script: "CREATE TABLE orders (id int PRIMARY KEY, status text)")
        let config = try database.config(
            tables: Self.trigger("a", definition: "{update: {columns: [state, total]}}") + "\n"
                + Self.trigger("b", table: "{schema: public, name: nope}", definition: #"{insert: {columns: "*"}}"#))
        let error = #expect(throws: InstallError.self) {
            try TriggerInstaller(config: config, logger: logger).install(connection)
        }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains(#"table public.orders has no column "state""#))
        #expect(text.contains(#"table public.orders has no column "total""#))
        #expect(text.contains("table public.nope does not exist (trigger b)"))
        #expect(try installedTriggers(connection).isEmpty)
    }

    @Test func checkConfigWithoutAFileSaysToCopyTheExample() throws {
        let result = try runHerald(["check-config"], environment: ["HERALD_CONFIG": "/nonexistent/herald.yaml"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("copy config/herald.example.yaml"))
    }

    @Test func statsOnADatabaseWithoutHeraldSaysToInstall() throws {
        let database = try TestDatabase()
        let path = try temporaryFile("database: {url: '\(database.url)'}\n")
        for command in [["stats"], ["cleanup", "--older-than", "7d", "--yes"], ["redeliver-event", "1"]] {
            let result = try runHerald(command + ["--config", path])
            #expect(result.status == 1)
            #expect(result.stderr.contains("run herald install-triggers"), "\(command): \(result.stderr)")
        }
    }
}
