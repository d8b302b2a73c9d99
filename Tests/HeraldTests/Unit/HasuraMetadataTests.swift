import Foundation
import Testing

@testable import Herald

/// Hasura metadata as exports write it: the directory layout, `!include`, the bare table
/// list, and the event-trigger keys real exports carry.
@Suite("Hasura metadata")
struct HasuraMetadataTests {
    let url = "postgres://app@127.0.0.1/app"

    func failure(_ body: () throws(ConfigError) -> HeraldConfig) -> ConfigError? {
        loadFailure(body)
    }

    func parse(_ yaml: String, environment: [String: String] = [:]) throws(ConfigError) -> HeraldConfig {
        try ConfigLoader.parse(yaml: yaml, file: "herald.yaml", environment: environment)
    }

    @Test func metadataDirectoryInExportLayoutLoadsEveryIncludedTable() throws {
        let config = try ConfigLoader.load(
            path: Fixtures.metadataConfig, environment: Fixtures.metadataEnvironment(databaseURL: url))
        #expect(config.database.url == url)
        #expect(config.triggers.filter(\.isEventTrigger).map(\.name) == ["InvoiceLineChanged", "order_changes", "order_deleted", "user-signup"])

        let invoice = try #require(config.trigger(named: "InvoiceLineChanged"))
        #expect(invoice.table == TableName(schema: "billing", name: "InvoiceLines"))
        #expect(invoice.update?.payload == .only(["id", "amount"]))
        #expect(invoice.triggerOnReplication)
        #expect(invoice.webhook == "http://127.0.0.1:9/billing")

        let orders = try #require(config.trigger(named: "order_changes"))
        #expect(orders.webhook == "http://127.0.0.1:9/hooks/orders")
        #expect(orders.webhookSource == .template("{{ORDERS_BASE_URL}}/orders"))
        #expect(orders.headers.map(\.value) == ["k-123", "hasura"])
        let cleanup = try #require(orders.cleanup)
        #expect(cleanup.clearOlderThanHours == 168)
        #expect(cleanup.batchSize == 10000)
        #expect(cleanup.timeoutSeconds == 60)
        #expect(!cleanup.paused)
        #expect(cleanup.schedule.description == "0 0 * * *")
        #expect(orders.location?.file.hasSuffix("public_orders.yaml") == true)

        let deleted = try #require(config.trigger(named: "order_deleted"))
        #expect(deleted.comment == "Tell the warehouse when an order is cancelled for good")
        #expect(deleted.webhookSource == .environment("ORDER_DELETED_WEBHOOK"))

        // update: {columns: []} listens to no column: Hasura never fires it.
        let users = try #require(config.trigger(named: "user-signup"))
        #expect(users.update == nil)
        #expect(users.insert != nil)
    }

    @Test func databaseURLSettingBeatsTheMetadataSource() throws {
        var environment = Fixtures.metadataEnvironment(databaseURL: url)
        environment["HERALD_DATABASE_URL"] = "postgres://other@127.0.0.1/other"
        let config = try ConfigLoader.load(path: Fixtures.metadataConfig, environment: environment)
        #expect(config.database.url == "postgres://other@127.0.0.1/other")
    }

    @Test func missingSourceURLVariableNamesDatabasesYaml() throws {
        var environment = Fixtures.metadataEnvironment(databaseURL: url)
        environment["HASURA_GRAPHQL_DATABASE_URL"] = nil
        let error = try #require(failure { () throws(ConfigError) in
            try ConfigLoader.load(path: Fixtures.metadataConfig, environment: environment)
        })
        #expect(error.code == .missingEnvironment)
        #expect(error.file.hasSuffix("databases/databases.yaml"))
        #expect(error.message.contains("HASURA_GRAPHQL_DATABASE_URL"))
    }

    @Test func problemInsideAnIncludedFileNamesThatFile() throws {
        var environment = Fixtures.metadataEnvironment(databaseURL: url)
        environment["ORDERS_API_KEY"] = nil
        let error = try #require(failure { () throws(ConfigError) in
            try ConfigLoader.load(path: Fixtures.metadataConfig, environment: environment)
        })
        #expect(error.file.hasSuffix("public_orders.yaml"))
        #expect(error.message.contains("ORDERS_API_KEY"))
    }

    @Test func directoryWithoutDatabasesYamlIsNamedAsNotMetadata() throws {
        let error = try #require(failure { () throws(ConfigError) in
            try parse("hasura_metadata: /nonexistent/metadata\ndatabase: {url: 'postgres://x@h/d'}")
        })
        #expect(error.key == "hasura_metadata")
        #expect(error.message.contains("databases/databases.yaml"))
    }

    @Test func tablesAndMetadataTogetherAreRefused() throws {
        let error = try #require(failure { () throws(ConfigError) in
            try parse("hasura_metadata: m\ntables: []\ndatabase: {url: 'postgres://x@h/d'}")
        })
        #expect(error.message.contains("not both"))
    }

    @Test func bareTableListLoadsWithTheDatabaseURLFromTheEnvironment() throws {
        let yaml = """
            - table: {schema: public, name: orders}
              event_triggers:
                - name: order_changes
                  definition: {insert: {columns: "*"}}
                  webhook: http://127.0.0.1:9/x
            """
        let config = try parse(yaml, environment: ["HERALD_DATABASE_URL": url])
        #expect(config.triggers.filter(\.isEventTrigger).map(\.name) == ["order_changes"])
        let error = try #require(failure { () throws(ConfigError) in try parse(yaml) })
        #expect(error.message.contains("bare Hasura table list"))
        #expect(error.message.contains("HERALD_DATABASE_URL"))
    }

    @Test func includeTagAndIncludeStringBothWorkInline() throws {
        let directory = NSTemporaryDirectory() + "herald-include-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try """
            table: {schema: public, name: orders}
            event_triggers:
              - name: a
                definition: {insert: {columns: "*"}}
                webhook: http://127.0.0.1:9/a
            """.write(toFile: directory + "/orders.yaml", atomically: true, encoding: .utf8)
        try """
            table: {schema: public, name: users}
            event_triggers:
              - name: b
                definition: {delete: {columns: "*"}}
                webhook: http://127.0.0.1:9/b
            """.write(toFile: directory + "/users.yaml", atomically: true, encoding: .utf8)
        let configPath = directory + "/herald.yaml"
        try """
            database: {url: '\(url)'}
            tables:
              - !include orders.yaml
              - "!include users.yaml"
            """.write(toFile: configPath, atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(path: configPath, environment: [:])
        #expect(config.triggers.filter(\.isEventTrigger).map(\.name) == ["a", "b"])
    }

    static let oneTrigger = oneTriggerYAML

    func withTriggerKey(_ line: String) -> String {
        oneTriggerYAML(withKeys: line)
    }

    @Test(arguments: ["response_transform"])
    func responseTransformsAreRefusedWithAReasonAndNotOfferedAsExpected(key: String) throws {
        let error = try #require(failure { () throws(ConfigError) in
            try parse(withTriggerKey("\(key): {method: POST}"))
        })
        #expect(error.code == .unsupported)
        #expect(error.key?.hasSuffix(key) == true)
        #expect(error.message.contains("not supported"))
        let unknown = try #require(failure { () throws(ConfigError) in try parse(withTriggerKey("retry_cnf: {}")) })
        #expect(!unknown.message.contains("response_transform"))
        #expect(unknown.message.contains("cleanup_config"))
    }

    @Test func hasuraExportKeysLoad() throws {
        let config = try parse(
            Self.oneTrigger + """
                        source: default
                        replace: true
                        comment: hello
                        trigger_on_replication: true
                        cleanup_config: {schedule: "*/15 * * * *", clear_older_than: 24, paused: true, clean_invocation_logs: true}

                """)
        let trigger = config.triggers[0]
        #expect(trigger.comment == "hello")
        #expect(trigger.triggerOnReplication)
        #expect(trigger.cleanup?.paused == true)
        #expect(trigger.cleanup?.clearOlderThanHours == 24)
    }

    @Test func cleanupScheduleThatIsNotCronNamesTheKey() throws {
        let error = try #require(failure { () throws(ConfigError) in
            try parse(withTriggerKey("cleanup_config: {schedule: \"every day\", clear_older_than: 24}"))
        })
        #expect(error.key?.hasSuffix("cleanup_config.schedule") == true)
        #expect(error.message.contains("five fields"))
    }

    @Test func payloadCompatSetsHasurasCreatedAtForEveryTrigger() throws {
        let config = try parse(Self.oneTrigger + "payload_compat: {created_at: hasura}\n")
        #expect(config.triggers.allSatisfy { $0.createdAtFormat == .hasura })
        let error = try #require(failure { () throws(ConfigError) in
            try parse(Self.oneTrigger + "payload_compat: {created_at: naive}\n")
        })
        #expect(error.key == "payload_compat.created_at")
    }

    @Test func leaseShorterThanATimeoutNamesTheTriggerLineAndTheSettingToRaise() throws {
        let error = try #require(failure { () throws(ConfigError) in
            try parse("worker: {lease_seconds: 300}\n" + Self.oneTrigger + "        retry_conf: {timeout_sec: 400}\n")
        })
        #expect(error.line != nil)
        #expect(error.message.contains("raise worker.lease_seconds"))
        #expect(error.message.contains("400"))
    }

    @Test func everyProblemIsReportedInOneRun() throws {
        let error = try #require(failure { () throws(ConfigError) in
            try parse(
                """
                stats: {bearer_token_env: STATS_TOKEN}
                worker: {lease_seconds: 300}
                tables:
                  - table: {schema: public, name: a}
                    event_triggers:
                      - {name: one, definition: {insert: {columns: "*"}}, webhook_from_env: ONE_URL}
                      - {name: two, definition: {insert: {columns: "*"}}, webhook: "http://h/x", headers: [{name: K, value_from_env: TWO_KEY}]}
                  - table: {schema: public, name: b}
                    event_triggers:
                      - {name: three, definition: {insert: {columns: "*"}}, webhook: "http://h/x", retry_conf: {timeout_sec: 999}}
                """)
        })
        #expect(error.others.count == 4)
        for expected in ["STATS_TOKEN", "database.url", "ONE_URL", "TWO_KEY", "timeout_sec 999"] {
            #expect(error.description.contains(expected), "\(expected) missing from: \(error)")
        }
        #expect(error.description.hasPrefix("5 problems:"))
    }

    @Test func missingConfigFileSaysToCopyTheExample() throws {
        let error = try #require(failure { () throws(ConfigError) in
            try ConfigLoader.load(path: "/nonexistent/herald.yaml", environment: [:])
        })
        #expect(error.message.contains("config/herald.example.yaml"))
        #expect(error.message.contains("--config"))
    }
}

@Suite("Cron schedule")
struct CronScheduleTests {
    func date(_ text: String) -> Date {
        ISO8601DateFormatter().date(from: text)!
    }

    @Test func dailyAtMidnightIsTheNextMidnightUTC() throws {
        let schedule = try CronSchedule("0 0 * * *")
        #expect(schedule.next(after: date("2026-11-23T17:10:00Z")) == date("2026-11-24T00:00:00Z"))
        #expect(schedule.next(after: date("2026-11-24T00:00:00Z")) == date("2026-11-25T00:00:00Z"))
    }

    @Test func stepsRangesListsAndWeekdays() throws {
        #expect(try CronSchedule("*/15 * * * *").next(after: date("2026-11-23T17:16:30Z")) == date("2026-11-23T17:30:00Z"))
        #expect(try CronSchedule("5 9-17/4 * * *").next(after: date("2026-11-23T13:06:00Z")) == date("2026-11-23T17:05:00Z"))
        // 2026-11-23 is a Monday; 6 is Saturday, 7 Sunday.
        #expect(try CronSchedule("0 3 * * 6,7").next(after: date("2026-11-23T00:00:00Z")) == date("2026-11-28T03:00:00Z"))
        #expect(try CronSchedule("30 1 1 * *").next(after: date("2026-11-23T00:00:00Z")) == date("2026-12-01T01:30:00Z"))
        #expect(try CronSchedule("0 0 31 2 *").next(after: date("2026-11-23T00:00:00Z")) == nil)
    }

    @Test(arguments: ["* * * *", "60 * * * *", "0 0 * JAN *", "*/0 * * * *", "1-x * * * *"])
    func malformedExpressionsAreRefused(text: String) {
        #expect(throws: CronScheduleError.self) { try CronSchedule(text) }
    }

    @Test func earliestDueTriggersRunTogether() throws {
        let hourly = TriggerCleanupService.Job(
            trigger: "a", cleanup: CleanupConfig(schedule: try CronSchedule("0 * * * *"), clearOlderThanHours: 1))
        let halfHour = TriggerCleanupService.Job(
            trigger: "b", cleanup: CleanupConfig(schedule: try CronSchedule("0,30 * * * *"), clearOlderThanHours: 1))
        let first = try #require(TriggerCleanupService.nextRun([hourly, halfHour], after: date("2026-11-23T17:10:00Z")))
        #expect(first.0 == date("2026-11-23T17:30:00Z"))
        #expect(first.1.map(\.trigger) == ["b"])
        let second = try #require(TriggerCleanupService.nextRun([hourly, halfHour], after: first.0))
        #expect(second.1.map(\.trigger) == ["a", "b"])
    }
}

/// A config with one trigger `t` on `public.orders`, for tests of trigger keys.
let oneTriggerYAML = """
    database: {url: 'postgres://app@127.0.0.1/app'}
    tables:
      - table: {schema: public, name: orders}
        event_triggers:
          - name: t
            definition: {insert: {columns: "*"}}
            webhook: http://127.0.0.1:9/x

    """

/// ``oneTriggerYAML`` with more keys (one per line) on the trigger.
func oneTriggerYAML(withKeys keys: String) -> String {
    oneTriggerYAML + keys.split(separator: "\n").map { "        " + $0 + "\n" }.joined()
}
