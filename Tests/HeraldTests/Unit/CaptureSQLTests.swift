import Foundation
import Testing

@testable import Herald

@Suite("Capture SQL generation")
struct CaptureSQLTests {
    func trigger(_ configure: (inout TriggerConfig) -> Void) -> TriggerConfig {
        var trigger = TriggerConfig(
            name: "order_changes", table: TableName(schema: "My Schema", name: "Order \"Items\""),
            webhook: "http://h/x")
        configure(&trigger)
        return trigger
    }

    @Test func namesAreQuotedEverywhere() {
        let config = trigger {
            $0.update = OperationSpec(columns: .only(["Total Amount", "it's"]), payload: .only(["Total Amount"]))
        }
        let sql = CaptureTrigger.triggers(for: config)[0].createSQL
        #expect(
            sql == #"""
                CREATE TRIGGER "herald_order_changes_update" AFTER UPDATE ON "My Schema"."Order ""Items""" FOR EACH ROW \#
                WHEN (OLD."Total Amount" IS DISTINCT FROM NEW."Total Amount" OR OLD."it's" IS DISTINCT FROM NEW."it's") \#
                EXECUTE FUNCTION herald.capture('order_changes', 'Total Amount')
                """#)
    }

    @Test func allColumnsUpdateFiresOnlyWhenTheRowChangedByteForByte() {
        let config = trigger {
            $0.insert = OperationSpec()
            $0.update = OperationSpec()
            $0.delete = OperationSpec()
        }
        let triggers = CaptureTrigger.triggers(for: config)
        #expect(triggers.map(\.operation) == [.insert, .update, .delete])
        #expect(!triggers[0].createSQL.contains("WHEN"))
        #expect(triggers[1].createSQL.contains(" WHEN (OLD.* *<> NEW.*) "))
        #expect(!triggers[2].createSQL.contains("WHEN"))
        #expect(triggers.allSatisfy { $0.createSQL.hasSuffix("herald.capture('order_changes')") })
    }

    @Test func triggerOnReplicationEnablesTheTriggerAlways() {
        let config = trigger {
            $0.insert = OperationSpec()
            $0.triggerOnReplication = true
        }
        let sql = CaptureTrigger.triggers(for: config)[0].createSQL
        #expect(sql.hasSuffix(#"; ALTER TABLE "My Schema"."Order ""Items""" ENABLE ALWAYS TRIGGER "herald_order_changes_insert""#))
    }

    @Test func fingerprintChangesWithDefinitionOnly() {
        let a = CaptureTrigger.triggers(for: trigger { $0.insert = OperationSpec() })[0]
        let b = CaptureTrigger.triggers(for: trigger { $0.insert = OperationSpec(payload: .only(["id"])) })[0]
        let a2 = CaptureTrigger.triggers(for: trigger { $0.insert = OperationSpec(); $0.webhook = "http://other/" })[0]
        #expect(a.fingerprint != b.fingerprint)
        #expect(a.fingerprint == a2.fingerprint)
        #expect(a.commentSQL.hasPrefix("COMMENT ON TRIGGER \"herald_order_changes_insert\" ON \"My Schema\"."))
    }

    @Test func manualOnlyTriggerCreatesNoDatabaseTrigger() {
        #expect(CaptureTrigger.triggers(for: trigger { $0.enableManual = true }).isEmpty)
    }

    @Test func identifierAndLiteralQuoting() {
        #expect(SQLQuoting.identifier("a\"b") == "\"a\"\"b\"")
        #expect(SQLQuoting.literal("it's") == "'it''s'")
        #expect(SQLQuoting.literal("back\\slash") == "'back\\slash'")
    }

    @Test func binaryCarriesTheSQLFilesVerbatim() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../sql").standardized
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }
            .sorted()
        let embedded = [SchemaMigrator.bootstrap] + SchemaMigrator.migrations
        #expect(files == embedded.map(\.name), "sql/ and the binary list different files: run scripts/gen-schema")
        for file in embedded {
            let text = try String(contentsOf: directory.appendingPathComponent(file.name), encoding: .utf8)
            #expect(text == file.sql + "\n", "\(file.name) differs from the binary's copy: run scripts/gen-schema")
        }
        #expect(SchemaMigrator.latestVersion == SchemaMigrator.migrations.count)
    }
}

/// Capture triggers on Citus tables: they run on the shards, so the table is named in the
/// arguments, and the shard function writes the key itself.
@Suite("Capture SQL on Citus shards")
struct ShardCaptureSQLTests {
    let table = TableName(schema: "sales", name: "Order Lines")

    @Test func theShardFunctionNamesTheTableAndTheKey() {
        var trigger = TriggerConfig(name: "lines", table: table, webhook: "http://127.0.0.1:1/x")
        trigger.insert = OperationSpec()
        let unordered = CaptureTrigger.triggers(for: trigger, onShards: true)
        #expect(unordered.count == 1)
        #expect(unordered[0].createSQL.hasSuffix("EXECUTE FUNCTION herald.capture_shard('lines', 'sales', 'Order Lines', '')"))
        #expect(!unordered[0].isOrdered)
        let ordered = CaptureTrigger.triggers(for: trigger, keyColumns: ["tenant_id", "id"], onShards: true)
        #expect(ordered[0].createSQL.hasSuffix(
            "EXECUTE FUNCTION herald.capture_shard('lines', 'sales', 'Order Lines', '{\"tenant_id\",\"id\"}')"), "\(ordered[0].createSQL)")
        #expect(ordered[0].isOrdered)
        // A different function is a different definition: install-triggers replaces it.
        #expect(unordered[0].fingerprint != CaptureTrigger.triggers(for: trigger)[0].fingerprint)
    }
}
