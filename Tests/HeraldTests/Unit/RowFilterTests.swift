import Foundation
import Testing

@testable import Herald

@Suite("Row filters and backfill progress")
struct RowFilterTests {
    let table = TableName(schema: "public", name: "orders")

    func expression(_ text: String) throws -> RowFilterExpression { try RowFilterExpression(text) }

    @Test func theMissingRowIsATypedNullRowForInsertAndDelete() throws {
        let filter = RowFilter(all: try expression("NEW.status = 'paid' AND OLD.status IS DISTINCT FROM NEW.status"))
        #expect(
            filter.condition(for: .insert, table: table)
                == #"NEW.status = 'paid' AND (NULL::"public"."orders").status IS DISTINCT FROM NEW.status"#)
        #expect(
            filter.condition(for: .update, table: table) == "NEW.status = 'paid' AND OLD.status IS DISTINCT FROM NEW.status")
        #expect(
            filter.condition(for: .delete, table: table)
                == #"(NULL::"public"."orders").status = 'paid' AND OLD.status IS DISTINCT FROM (NULL::"public"."orders").status"#)
    }

    @Test func onlyRowReferencesAreReplaced() throws {
        // Inside strings, quoted names that are not exactly old/new, fields named new, and
        // dollar quotes, the words stay; lower case and "new" are row references.
        let text = #"new.note <> 'old news' AND "New" = $$NEW$$ AND o.new > 1 AND "new".x = E'it\'s old' AND Old IS NULL"#
        let rendered = try expression(text).rendered(old: "<O>", new: "<N>")
        #expect(rendered == #"<N>.note <> 'old news' AND "New" = $$NEW$$ AND o.new > 1 AND <N>.x = E'it\'s old' AND <O> IS NULL"#)
    }

    @Test func commentsAreDroppedSoNothingFollowingIsSwallowed() throws {
        let rendered = try expression("NEW.a = 1 -- only paid\n/* nested /* comment */ */ OR NEW.b").rendered(
            old: "OLD", new: "NEW")
        #expect(!rendered.contains("paid") && !rendered.contains("comment"))
        #expect(rendered.contains("NEW.a = 1") && rendered.contains("OR NEW.b"))
    }

    @Test func whatCannotBeOneWhenExpressionIsRefused() {
        #expect(throws: RowFilterExpression.Problem.statementSeparator) { try expression("true; DROP TABLE orders") }
        #expect(throws: RowFilterExpression.Problem.unbalancedParentheses) {
            try expression("true) EXECUTE FUNCTION evil(")
        }
        #expect(throws: RowFilterExpression.Problem.unbalancedParentheses) { try expression("(NEW.a = 1") }
        #expect(throws: RowFilterExpression.Problem.subquery) { try expression("NEW.id IN (SELECT id FROM vip)") }
        #expect(throws: RowFilterExpression.Problem.unterminated("string")) { try expression("NEW.a = 'x") }
        #expect(throws: RowFilterExpression.Problem.empty) { try expression("  -- nothing\n") }
        // A semicolon or SELECT inside a string is text.
        #expect(throws: Never.self) { try expression("NEW.note = 'a; SELECT 1'") }
    }

    @Test func theFilterJoinsTheUpdateColumnsCondition() throws {
        var config = TriggerConfig(name: "paid", table: table, webhook: "http://h/x")
        config.insert = OperationSpec()
        config.update = OperationSpec(columns: .only(["status"]))
        config.delete = OperationSpec()
        config.filter = RowFilter(byOperation: [.insert: try expression("NEW.total > 100"), .update: try expression("NEW.status = 'paid'")])
        let triggers = CaptureTrigger.triggers(for: config)
        #expect(triggers[0].createSQL.contains(" FOR EACH ROW WHEN (NEW.total > 100) EXECUTE"))
        #expect(
            triggers[1].createSQL.contains(
                #" WHEN ((OLD."status" IS DISTINCT FROM NEW."status") AND (NEW.status = 'paid')) EXECUTE"#))
        #expect(!triggers[2].createSQL.contains("WHEN"))
        // A changed filter is a changed trigger.
        var other = config
        other.filter = RowFilter(all: try expression("NEW.total > 200"))
        #expect(CaptureTrigger.triggers(for: other)[0].fingerprint != triggers[0].fingerprint)
    }

    @Test func filterIsReadAsAStringOrPerOperation() throws {
        let yaml = """
            database: {url: 'postgres://localhost/x'}
            tables:
              - table: {schema: public, name: orders}
                event_triggers:
                  - name: a
                    definition: {insert: {columns: "*"}, update: {columns: "*"}}
                    webhook: http://127.0.0.1:9/a
                    filter: NEW.status = 'paid'
                  - name: b
                    definition: {update: {columns: "*"}}
                    webhook: http://127.0.0.1:9/b
                    filter:
                      update: OLD.status IS DISTINCT FROM NEW.status
            """
        let config = try ConfigLoader.parse(yaml: yaml, file: "t.yaml", environment: [:])
        #expect(config.triggers[0].filter?.expressions.count == 3)
        #expect(config.triggers[1].filter?.expressions.keys.sorted { $0.rawValue < $1.rawValue } == [.update])
    }

    @Test func badFiltersAreConfigErrorsWithTheLine() {
        let yaml = """
            database: {url: 'postgres://localhost/x'}
            tables:
              - table: orders
                event_triggers:
                  - name: a
                    definition: {insert: {columns: "*"}}
                    webhook: http://127.0.0.1:9/a
                    filter: "NEW.a = 1; DELETE FROM orders"
                  - name: b
                    definition: {insert: {columns: "*"}}
                    webhook: http://127.0.0.1:9/b
                    filter: {upsert: NEW.a = 1}
            """
        #expect {
            try ConfigLoader.parse(yaml: yaml, file: "t.yaml", environment: [:])
        } throws: { error in
            let text = "\(error)"
            return text.contains("t.yaml:8") && text.contains("';' is not allowed") && text.contains("upsert")
        }
    }

    @Test func progressEstimatesWithoutClaimingDoneEarly() {
        var progress = BackfillProgress(rowsBefore: 50_000, remainingAtStart: 150_000)
        progress.rowsThisRun = 100_000
        progress.elapsedSeconds = 10
        #expect(progress.line(trigger: "t") == "backfill t: 150000 rows of ~200000 (75%), 10000 rows/s, about 5s left")
        progress.rowsThisRun = 160_000  // the estimate was low
        #expect(progress.line(trigger: "t").contains("of ~210000 (99%)"))
        #expect(progress.summary(trigger: "t").contains("50000 rows were done by an earlier run, 210000 in all"))
        #expect(DurationText.describe(seconds: 3725) == "1h02m")
        #expect(BackfillOptions(batchSize: 1000, rowsPerSecond: 200).effectiveBatchSize == 200)
    }
}
