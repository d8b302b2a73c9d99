import Foundation
import Testing

@testable import Herald

@Suite("Configuration")
struct ConfigTests {
    static let base = "database: {url: 'postgres://app:s3cret@127.0.0.1/app'}\n"

    func parse(_ yaml: String, environment: [String: String] = [:]) throws(ConfigError) -> HeraldConfig {
        try ConfigLoader.parse(yaml: Self.base + yaml, file: "herald.yaml", environment: environment)
    }

    func failure(_ yaml: String, environment: [String: String] = [:]) -> ConfigError? {
        do {
            _ = try parse(yaml, environment: environment)
            return nil
        } catch {
            return error
        }
    }

    @Test func exampleConfigLoadsWithDefaultsAndHasuraFields() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../config/herald.example.yaml").standardized.path
        let config = try ConfigLoader.load(path: path, environment: [:])
        let trigger = try #require(config.trigger(named: "order_changes"))
        #expect(trigger.table == TableName(schema: "public", name: "orders"))
        #expect(trigger.update?.columns == .only(["status", "total"]))
        #expect(trigger.update?.payload == .only(["id", "status", "total"]))
        #expect(trigger.insert?.columns == .all)
        #expect(trigger.retry == RetryConfig(numRetries: 5, intervalSeconds: 10, timeoutSeconds: 30))
        #expect(trigger.backoff.strategy == .exponential)
        #expect(trigger.enableManual)
        #expect(config.worker.httpPoolSize == 100)
    }

    @Test func realHasuraTablesYamlPasteLoads() throws {
        let config = try parse(
            """
            tables:
              - table:
                  schema: public
                  name: users
                object_relationships:
                  - name: profile
                    using: {foreign_key_constraint_on: profile_id}
                select_permissions:
                  - role: user
                    permission:
                      columns: [id, email]
                      filter: {id: {_eq: X-Hasura-User-Id}}
                event_triggers:
                  - name: user-created
                    definition:
                      enable_manual: false
                      insert:
                        columns: '*'
                    retry_conf:
                      interval_sec: 10
                      num_retries: 0
                      timeout_sec: 60
                    webhook: https://example.com/hook
            """)
        #expect(config.triggers.filter(\.isEventTrigger).map(\.name) == ["user-created"])
        #expect(config.triggers[0].retry.maxAttempts == 1)
    }

    @Test func misspeltEventTriggersAtTableLevelIsAnErrorWithTheRightName() throws {
        let error = try #require(
            failure(
                """
                tables:
                  - table: {schema: public, name: orders}
                    select_permissions: []
                    event_trigger:
                      - {name: t, definition: {insert: {columns: "*"}}, webhook: "http://h/a"}
                """))
        #expect(error.code == .unknownKey)
        #expect(error.key == "tables[0].event_trigger")
        #expect(error.line == 6)
        #expect(error.message.contains("did you mean 'event_triggers'?"))
        // The unknown key is the whole story: no second problem about the missing triggers.
        #expect(error.others.isEmpty)
    }

    @Test func tableEntryWithoutEventTriggersIsAnError() throws {
        for entry in ["- table: {schema: public, name: plain}", "- {table: plain, event_triggers: []}"] {
            let error = try #require(failure("tables:\n  \(entry)\n"))
            #expect(error.code == .missingKey)
            #expect(error.message.contains("table public.plain has no event_triggers"))
        }
    }

    @Test func keyInsideTheTableNameIsAnError() throws {
        let error = try #require(failure("tables:\n  - table: {schema: public, name: a, event_triggers: []}\n"))
        #expect(error.key == "tables[0].table.event_triggers")
    }

    @Test func hasuraTableListMayTrackTablesWithoutTriggers() throws {
        let config = try ConfigLoader.parse(
            yaml: """
                - table: {schema: public, name: plain}
                - table: {schema: public, name: a}
                  event_triggers:
                    - {name: t, definition: {insert: {columns: "*"}}, webhook: "http://h/a"}
                """,
            file: "tables.yaml", environment: ["HERALD_DATABASE_URL": "postgres://h/db"])
        #expect(config.triggers.filter(\.isEventTrigger).map(\.name) == ["t"])
    }

    @Test func closestNameSuggestsOnlyLikelyTypos() {
        #expect(ClosestName.suggestion(for: "event_trigger", among: ["table", "event_triggers"]) == "event_triggers")
        #expect(ClosestName.suggestion(for: "HERALD_WORKER_HTTP_POOL_SIZ", among: ["HERALD_WORKER_HTTP_POOL_SIZE", "HERALD_CONFIG"]) == "HERALD_WORKER_HTTP_POOL_SIZE")
        #expect(ClosestName.suggestion(for: "zzz", among: ["table", "event_triggers"]) == nil)
        #expect(ClosestName.editDistance("kitten", "sitting") == 3)
    }

    @Test func unknownTriggerKeyIsNamedWithItsLine() throws {
        let error = try #require(
            failure(
                """
                tables:
                  - table: {schema: public, name: orders}
                    event_triggers:
                      - name: t
                        definition: {insert: {columns: "*"}}
                        webhook: http://localhost/x
                        retry_cnf: {num_retries: 1}
                """))
        #expect(error.code == .unknownKey)
        #expect(error.line == 8)
        #expect(error.key == "tables[0].event_triggers[0].retry_cnf")
        #expect(error.description.hasPrefix("herald.yaml:8: tables[0].event_triggers[0].retry_cnf: unknown key"))
    }

    @Test func duplicateTriggerNamesAreRejected() throws {
        let error = try #require(
            failure(
                """
                tables:
                  - table: {schema: public, name: a}
                    event_triggers:
                      - {name: dup, definition: {insert: {columns: "*"}}, webhook: "http://h/a"}
                  - table: {schema: public, name: b}
                    event_triggers:
                      - {name: dup, definition: {delete: {columns: "*"}}, webhook: "http://h/b"}
                """))
        #expect(error.code == .duplicateTrigger)
        #expect(error.description.contains("'dup'"))
        #expect(error.description.contains("first defined at line 5"))
    }

    @Test func missingEnvironmentVariableIsNamed() throws {
        let yaml = """
            tables:
              - table: {schema: public, name: a}
                event_triggers:
                  - name: t
                    definition: {insert: {columns: "*"}}
                    webhook_from_env: ORDERS_WEBHOOK
                    headers: [{name: X-Key, value_from_env: ORDERS_KEY}]
            """
        let webhook = try #require(failure(yaml))
        #expect(webhook.code == .missingEnvironment)
        #expect(webhook.description.contains("ORDERS_WEBHOOK"))
        let header = try #require(failure(yaml, environment: ["ORDERS_WEBHOOK": "http://127.0.0.1:9/x"]))
        #expect(header.description.contains("ORDERS_KEY"))
        #expect(header.key == "tables[0].event_triggers[0].headers[0].value_from_env")
        let config = try parse(yaml, environment: ["ORDERS_WEBHOOK": "http://127.0.0.1:9/x", "ORDERS_KEY": "k"])
        #expect(config.triggers[0].headers == [HeaderConfig(name: "X-Key", value: "k", source: .environment("ORDERS_KEY"))])
        #expect(config.triggers[0].displayWebhook == "<env ORDERS_WEBHOOK>")
    }

    @Test(arguments: ["ftp://example.com/x", "not a url", "http://", "/relative/path"])
    func webhookMustBeHTTPURL(_ url: String) throws {
        let error = try #require(
            failure(
                """
                tables:
                  - table: {schema: public, name: a}
                    event_triggers:
                      - {name: t, definition: {insert: {columns: "*"}}, webhook: "\(url)"}
                """))
        #expect(error.code == .invalidValue)
        #expect(error.key == "tables[0].event_triggers[0].webhook")
        #expect(error.description.contains("http:// or https://"))
    }

    @Test func webhookTemplateReadsEnvironmentLikeHasura() throws {
        let config = try parse(
            """
            tables:
              - table: orders
                event_triggers:
                  - {name: t, definition: {insert: {columns: "*"}}, webhook: "{{BASE_URL}}/orders"}
            """, environment: ["BASE_URL": "https://hooks.internal:8443"])
        #expect(config.triggers[0].webhook == "https://hooks.internal:8443/orders")
        #expect(config.triggers[0].table == TableName(schema: "public", name: "orders"))
        #expect(config.triggers[0].displayWebhook == "{{BASE_URL}}/orders")
    }

    @Test(arguments: [
        ("num_retries: -1", "num_retries"), ("interval_sec: -5", "interval_sec"), ("timeout_sec: 0", "timeout_sec"),
    ])
    func negativeRetryNumbersAreRejected(_ setting: String, _ key: String) throws {
        let error = try #require(
            failure(
                """
                tables:
                  - table: {schema: public, name: a}
                    event_triggers:
                      - name: t
                        definition: {insert: {columns: "*"}}
                        webhook: http://localhost/x
                        retry_conf: {\(setting)}
                """))
        #expect(error.code == .invalidValue)
        #expect(error.key == "tables[0].event_triggers[0].retry_conf.\(key)")
    }

    @Test func unsupportedHasuraFeatureIsRefusedByName() throws {
        let error = try #require(
            failure(
                """
                tables:
                  - table: {schema: public, name: a}
                    event_triggers:
                      - name: t
                        definition: {insert: {columns: "*"}}
                        webhook: http://localhost/x
                        response_transform: {version: 2}
                """))
        #expect(error.code == .unsupported)
        #expect(error.key == "tables[0].event_triggers[0].response_transform")
    }

    @Test func invalidTriggerNameIsRejected() throws {
        let error = try #require(
            failure(
                """
                tables:
                  - table: {schema: public, name: a}
                    event_triggers:
                      - {name: "bad name", definition: {insert: {columns: "*"}}, webhook: "http://h/x"}
                """))
        #expect(error.code == .invalidValue)
        #expect(error.description.contains("bad name"))
    }

    @Test func triggerThatFiresOnNothingIsRejected() throws {
        let error = try #require(
            failure(
                """
                tables:
                  - table: {schema: public, name: a}
                    event_triggers:
                      - {name: t, definition: {enable_manual: false}, webhook: "http://h/x"}
                """))
        #expect(error.description.contains("fires on nothing"))
    }

    @Test func environmentOverridesWorkerStatsAndDatabaseSettings() throws {
        let config = try parse(
            "worker: {http_pool_size: 10}\n",
            environment: [
                "HERALD_WORKER_HTTP_POOL_SIZE": "250", "HERALD_WORKER_LEASE_SECONDS": "60",
                "HERALD_STATS_LISTEN": "", "HERALD_DATABASE_URL": "postgres://other@db/x",
            ])
        #expect(config.worker.httpPoolSize == 250)
        #expect(config.worker.leaseSeconds == 60)
        #expect(config.stats.listen == "")
        #expect(config.database.url == "postgres://other@db/x")
    }

    @Test func badEnvironmentOverrideNamesTheVariable() throws {
        let error = try #require(failure("", environment: ["HERALD_WORKER_FETCH_BATCH_SIZE": "many"]))
        #expect(error.key == "$HERALD_WORKER_FETCH_BATCH_SIZE")
        #expect(error.description.contains("'many'"))
    }

    @Test func unknownWorkerSettingIsRejected() throws {
        let error = try #require(failure("worker:\n  http_pool_sise: 5\n"))
        #expect(error.code == .unknownKey)
        #expect(error.key == "worker.http_pool_sise")
        #expect(error.line == 3)
    }

    @Test func syntaxErrorCarriesLine() throws {
        let error = try #require(failure("worker:\n  http_pool_size: [1,\n"))
        #expect(error.code == .syntax)
        #expect(error.line != nil)
    }

    @Test func missingFileIsNamed() {
        #expect(throws: ConfigError.self) { try ConfigLoader.load(path: "/nonexistent/herald.yaml", environment: [:]) }
    }

    @Test func databasePasswordIsRedacted() {
        #expect(
            DatabaseSettings.redact("postgres://app:s3cret@127.0.0.1:5432/app") == "postgres://app:***@127.0.0.1:5432/app")
        #expect(DatabaseSettings.redact("host=db password=s3cret user=app") == "host=db password=*** user=app")
        #expect(DatabaseSettings.redact("postgres://app@db/app") == "postgres://app@db/app")
    }

    @Test func signingSecretMustBeStandardWebhooksSecret() throws {
        let yaml = """
            tables:
              - table: {schema: public, name: a}
                event_triggers:
                  - name: t
                    definition: {insert: {columns: "*"}}
                    webhook: http://localhost/x
                    signing: {secret_from_env: SIGNING}
            """
        let bad = try #require(failure(yaml, environment: ["SIGNING": "whsec_***not base64***"]))
        #expect(bad.description.contains("$SIGNING"))
        #expect(!bad.description.contains("not base64"))
        let config = try parse(yaml, environment: ["SIGNING": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        #expect(config.triggers[0].signing?.key.count == 24)
        #expect(!ConfigSummary.text(for: config).contains("MfKQ9r8"))
    }

    @Test func listenerTimeoutAndConsoleConnectionsComeFromFileOrEnvironment() throws {
        let defaults = try parse("")
        #expect(defaults.stats.idleTimeoutSeconds == 30)
        #expect(defaults.console.connections == 4)
        let file = try parse("stats: {idle_timeout_seconds: 5}\nconsole: {connections: 2}\n")
        #expect(file.stats.idleTimeoutSeconds == 5)
        #expect(file.console.connections == 2)
        let overridden = try parse(
            "console: {connections: 2}\n",
            environment: ["HERALD_CONSOLE_CONNECTIONS": "3", "HERALD_STATS_IDLE_TIMEOUT_SECONDS": "1"])
        #expect(overridden.console.connections == 3)
        #expect(overridden.stats.idleTimeoutSeconds == 1)
        #expect(failure("console: {connections: 0}\n")?.key == "console.connections")
        #expect(failure("", environment: ["HERALD_STATS_IDLE_TIMEOUT_SECONDS": "soon"])?.key == "$HERALD_STATS_IDLE_TIMEOUT_SECONDS")
    }
}

@Suite("Environment check")
struct EnvironmentCheckTests {
    @Test func unknownLogLevelIsAnErrorListingTheValidOnes() throws {
        for (option, environment, origin) in [
            ("verbose" as String?, [String: String](), "--log-level"), (nil, ["HERALD_LOG_LEVEL": "verbose"], "$HERALD_LOG_LEVEL"),
        ] {
            #expect(throws: ConfigError.self) { try EnvironmentCheck.logLevel(option: option, environment: environment) }
            do {
                _ = try EnvironmentCheck.logLevel(option: option, environment: environment)
            } catch {
                #expect(error.description == "\(origin): unknown log level 'verbose' (expected one of: trace, debug, info, notice, warning, error, critical)")
            }
        }
        #expect(try EnvironmentCheck.logLevel(option: nil, environment: ["HERALD_LOG_LEVEL": "DEBUG"]) == .debug)
        #expect(try EnvironmentCheck.logLevel(option: "warning", environment: ["HERALD_LOG_LEVEL": "verbose"]) == .warning)
        #expect(try EnvironmentCheck.logLevel(option: nil, environment: [:]) == .info)
    }

    @Test func misspeltOverrideIsNamedWithTheClosestValidOne() throws {
        let config = try ConfigLoader.parse(
            yaml: "database: {url: 'postgres://h/db'}\n", file: "herald.yaml",
            environment: ["HERALD_WORKER_HTTP_POOL_SIZ": "5", "HERALD_WORKER_FETCH_BATCH_SIZE": "7"])
        #expect(config.worker.fetchBatchSize == 7)
        #expect(config.warnings.count == 1)
        #expect(config.warnings.first?.contains("HERALD_WORKER_HTTP_POOL_SIZ is not a Herald setting") == true)
        #expect(config.warnings.first?.contains("did you mean HERALD_WORKER_HTTP_POOL_SIZE?") == true)
    }

    @Test func variablesTheConfigurationNamesOrTheScriptsSetAreNotReported() throws {
        let config = try ConfigLoader.parse(
            yaml: """
                database: {url: 'postgres://h/db'}
                alerts: {webhook: 'http://a/', headers: [{name: X-Key, value_from_env: HERALD_ALERTS_KEY}]}
                """,
            file: "herald.yaml",
            environment: [
                "HERALD_ALERTS_KEY": "k", "HERALD_STATS_BEARER_TOKEN_ENV": "HERALD_DEMO_TOKEN", "HERALD_DEMO_TOKEN": "t",
                "HERALD_PG_PORT": "5433", "HERALD_INTEGRATION": "1", "HERALD_RETENTION_INTERVAL": "1h",
                "HERALD_CONSOLE_READ_ONLY": "true", "HERALD_CONFIG": "x", "HERALD_LOG_LEVEL": "debug",
            ])
        #expect(config.warnings.isEmpty)
        let unrelated = EnvironmentCheck.unknownVariableWarnings(environment: ["HERALD_ZZZ": "1"], referenced: [])
        #expect(unrelated.first?.hasPrefix("environment variable HERALD_ZZZ is not a Herald setting and is ignored (Herald reads") == true)
    }
}

@Suite("Database URL origin")
struct DatabaseURLOriginTests {
    @Test func theURLsOriginIsNamedAndTheEnvironmentSaysWhatItOverrides() throws {
        let yaml = "database: {url: 'postgres://file@h/db'}\n"
        let fromFile = try ConfigLoader.parse(yaml: yaml, file: "herald.yaml", environment: [:])
        #expect(fromFile.database.urlOrigin == "database.url in herald.yaml")
        let overridden = try ConfigLoader.parse(
            yaml: yaml, file: "herald.yaml", environment: ["HERALD_DATABASE_URL": "postgres://env@h/db"])
        #expect(overridden.database.url == "postgres://env@h/db")
        #expect(overridden.database.urlOrigin == "$HERALD_DATABASE_URL, which overrides database.url in herald.yaml")
        #expect(
            ConfigSummary.text(for: overridden).contains(
                "database: postgres://env@h/db (from $HERALD_DATABASE_URL, which overrides database.url in herald.yaml)"))
    }

    @Test func aConnectionFailureReadsAsWordsNotACodeName() {
        let error = PGError(code: .connectionFailed, message: "connection refused")
        #expect(error.description == "cannot connect to the database: connection refused")
        #expect(!error.description.contains("connectionFailed"))
    }
}
