import CLibPQ
import Foundation
import Testing

@testable import Herald

// What a whole Hasura project needs from the configuration (issue 17): `{{NAME}}` header
// templates, every problem in one run, the database URL where Hasura found it, and a lease
// that fits the metadata's timeouts.

/// The error loading fails with, or nil when it succeeds.
func loadFailure(_ body: () throws(ConfigError) -> HeraldConfig) -> ConfigError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}

/// Every problem an error carries, the first included.
func allProblems(_ error: ConfigError) -> [ConfigError] {
    var first = error
    first.others = []
    return [first] + error.others
}

private let database = "database: {url: 'postgres://app@127.0.0.1/app'}\n"

private func parse(_ yaml: String, environment: [String: String] = [:]) throws(ConfigError) -> HeraldConfig {
    try ConfigLoader.parse(yaml: yaml, file: "herald.yaml", environment: environment)
}

@Suite("Header templates")
struct HeaderTemplateTests {
    @Test func headerTemplateIsFilledFromTheEnvironmentAndKeptSecret() throws {
        let config = try parse(
            oneTriggerYAML(withKeys: "headers: [{name: X-Network, value: 'net-{{NEAR_NETWORK}}'}]"),
            environment: ["NEAR_NETWORK": "mainnet"])
        let header = try #require(config.triggers.first?.headers.first)
        #expect(header.value == "net-mainnet")
        #expect(header.source == .template("net-{{NEAR_NETWORK}}"))
        #expect(header.isSecret)
        #expect(header.displayValue == "<env NEAR_NETWORK>")
    }

    @Test func templatedHeaderValueAppearsInNoDisplayButReachesTheReceiver() throws {
        let config = try parse(
            "stats: {listen: ''}\n"
                + oneTriggerYAML(withKeys: "headers: [{name: X-Network, value: 'Bearer sk_{{NEAR_NETWORK}}'}]"),
            environment: ["NEAR_NETWORK": "mainnet-7"])
        let event = ClaimedEvent(
            id: 1, triggerName: "t", table: TableName(schema: "public", name: "orders"), payload: "{}",
            tries: 0, createdAt: "2026-01-01T00:00:00Z", createdAtEpoch: 0)
        let request = DeliveryRequest(
            event: event, trigger: config.triggers[0], installation: EventIDKey(bytes: Array(0..<32), v2From: 1), timestamp: 1)
        let summary = ConfigSummary.text(for: config)
        for shown in [request.recordedHeaders, summary, "\(config)", "\(config.triggers[0])"] {
            #expect(!shown.contains("mainnet-7"), "value shown in: \(shown)")
            #expect(!shown.contains("Bearer sk_"), "literal part of the template shown in: \(shown)")
        }
        #expect(summary.contains("header X-Network: <env NEAR_NETWORK>"))
        #expect(request.headers.contains { $0.name == "X-Network" && $0.value == "Bearer sk_mainnet-7" })
    }

    @Test func missingHeaderVariableNamesTheHeaderTheTriggerAndTheVariable() throws {
        let error = try #require(loadFailure { () throws(ConfigError) in
            try parse(oneTriggerYAML(withKeys: "headers: [{name: X-Network, value: '{{NEAR_NETWORK}}'}]"))
        })
        #expect(error.code == .missingEnvironment)
        #expect(error.line == 8)
        #expect(error.message.contains("NEAR_NETWORK"))
        #expect(error.message.contains("header 'X-Network' of trigger 't'"))
    }

    @Test func everyMissingVariableOfOneTemplateIsNamed() throws {
        let error = try #require(loadFailure { () throws(ConfigError) in
            try parse(oneTriggerYAML(withKeys: "headers: [{name: X-Route, value: '{{REGION}}/{{ZONE}}'}]"))
        })
        #expect(error.message.contains("REGION, ZONE"))
    }

    @Test func unterminatedTemplateNamesTheHeaderNotTheWebhook() throws {
        let error = try #require(loadFailure { () throws(ConfigError) in
            try parse(oneTriggerYAML(withKeys: "headers: [{name: X-Network, value: '{{NEAR_NETWORK'}]"))
        })
        #expect(error.code == .invalidValue)
        #expect(error.message == "unterminated '{{' in header 'X-Network' of trigger 't'")
    }

    @Test func alertsHeaderTemplateIsFilledAndAMissingVariableNamesAlerts() throws {
        let alerts = "alerts: {webhook: 'http://127.0.0.1:9/ops', headers: [{name: X-Team, value: '{{TEAM}}'}]}\n"
        let config = try parse(database + alerts, environment: ["TEAM": "payments"])
        let header = try #require(config.alerts?.headers.first)
        #expect(header.value == "payments")
        #expect(header.isSecret)
        let error = try #require(loadFailure { () throws(ConfigError) in try parse(database + alerts) })
        #expect(error.message.contains("header 'X-Team' of alerts"))
        #expect(error.message.contains("TEAM"))
    }
}

@Suite("Every problem in one run")
struct EveryProblemTests {
    @Test func oneTriggersIndependentProblemsAreAllReported() throws {
        let error = try #require(loadFailure { () throws(ConfigError) in
            try parse(
                """
                worker: {lease_seconds: 300}
                \(database)tables:
                  - table: {schema: public, name: orders}
                    event_triggers:
                      - name: t
                        definition: {insert: {columns: "*"}}
                        webhook_from_env: ONE_URL
                        headers: [{name: X-Net, value: '{{NET}}'}, {name: X-Key, value_from_env: ONE_KEY}]
                        signing: {secret_from_env: ONE_SECRET}
                        retry_conf: {timeout_sec: 400, num_retries: -1}
                        retry_cnf: {}
                """)
        })
        let problems = allProblems(error)
        for expected in [
            "ONE_URL", "NET", "ONE_KEY", "ONE_SECRET", "timeout_sec 400", "must be at least 0", "unknown key 'retry_cnf'",
        ] {
            #expect(problems.contains { $0.message.contains(expected) }, "\(expected) missing from: \(error)")
        }
        #expect(problems.count == 7)
        #expect(problems.allSatisfy { $0.line != nil })
    }

    @Test func leaseProblemIsReportedForATriggerWhoseWebhookVariableIsMissing() throws {
        let error = try #require(loadFailure { () throws(ConfigError) in
            try parse(
                """
                worker: {lease_seconds: 300}
                \(database)tables:
                  - table: {schema: public, name: a}
                    event_triggers:
                      - {name: slow, definition: {insert: {columns: "*"}}, webhook_from_env: SLOW_URL, retry_conf: {timeout_sec: 300}}
                """)
        })
        let problems = allProblems(error)
        #expect(problems.count == 2)
        #expect(problems.contains { $0.message.contains("SLOW_URL") })
        #expect(problems.contains { $0.key == "worker.lease_seconds" && $0.message.contains("trigger 'slow'") && $0.line == 6 })
    }

    @Test func aBadTableNameHidesNotItsTriggersProblems() throws {
        let error = try #require(loadFailure { () throws(ConfigError) in
            try parse(
                database + """
                    tables:
                      - table: {schema: public}
                        event_triggers:
                          - {name: t, definition: {insert: {columns: "*"}}, webhook_from_env: T_URL}
                    """)
        })
        let problems = allProblems(error)
        #expect(problems.contains { $0.message.contains("missing required key 'name'") })
        #expect(problems.contains { $0.message.contains("T_URL") })
    }

    @Test func aSourcesMissingURLHidesNotItsTriggersProblems() throws {
        let error = try #require(loadFailure { () throws(ConfigError) in
            try parse(
                """
                sources:
                  - name: a
                    database: {url_from_env: A_URL}
                    tables:
                      - table: {schema: public, name: orders}
                        event_triggers:
                          - {name: t, definition: {insert: {columns: "*"}}, webhook_from_env: T_URL}
                """)
        })
        let problems = allProblems(error)
        #expect(problems.count == 2)
        #expect(problems.contains { $0.message.contains("A_URL") && $0.line == 3 })
        #expect(problems.contains { $0.message.contains("T_URL") && $0.line == 7 })
    }

    @Test func aCronTriggersBadScheduleHidesNotItsOtherProblems() throws {
        let error = try #require(loadFailure { () throws(ConfigError) in
            try parse(
                database + """
                    cron_triggers:
                      - name: sync
                        schedule: hourly
                        webhook_from_env: SYNC_URL
                        headers: [{name: X-Token, value_from_env: SYNC_TOKEN}]
                        retry_conf: {timeout_seconds: 0, tolerance_seconds: -1}
                    """)
        })
        let problems = allProblems(error)
        for expected in ["'hourly' is not a cron expression", "SYNC_URL", "SYNC_TOKEN", "must be at least 1", "must be at least 0"] {
            #expect(problems.contains { $0.message.contains(expected) }, "\(expected) missing from: \(error)")
        }
        #expect(problems.count == 5)
    }

    @Test func everyUnknownKeyOfATriggerIsNamed() throws {
        let error = try #require(loadFailure { () throws(ConfigError) in
            try parse(oneTriggerYAML(withKeys: "retry_cnf: {}\nheders: []\nresponse_transform: {}"))
        })
        let problems = allProblems(error)
        #expect(problems.count == 3)
        #expect(problems.contains { $0.code == .unsupported && $0.key?.hasSuffix("response_transform") == true })
        #expect(problems.filter { $0.code == .unknownKey }.compactMap(\.key).sorted().map { $0.split(separator: ".").last }
            == ["heders", "retry_cnf"])
    }

    @Test func tenProblemsOfAHasuraExportAreAllReportedInOneRunWithFileAndLine() throws {
        let error = try #require(loadFailure { () throws(ConfigError) in
            try ConfigLoader.load(path: Fixtures.problemsConfig, environment: [:])
        })
        let problems = allProblems(error)
        let expected: [(file: String, line: Int, says: String)] = [
            ("databases/databases.yaml", 7, "connection_parameters lacks 'host'"),
            ("databases/databases.yaml", 10, "expected an integer"),
            ("tables/public_orders.yaml", 14, "ORDERS_BASE_URL"),
            ("tables/public_orders.yaml", 17, "NEAR_NETWORK"),
            ("tables/public_orders.yaml", 19, "ORDERS_SIGNING_SECRET"),
            ("tables/public_orders.yaml", 5, "timeout_sec 900, not below lease_seconds (600)"),
            ("tables/public_users.yaml", 10, "unknown key 'retry_cnf'"),
            ("metadata/cron_triggers.yaml", 3, "cron trigger 'nightly_report': 'every night at two' is not a cron expression"),
            ("metadata/cron_triggers.yaml", 13, "SYNC_BASE_URL"),
            ("metadata/cron_triggers.yaml", 18, "header 'Authorization' of cron trigger 'hourly_sync'"),
        ]
        for problem in expected {
            let matches = problems.filter {
                $0.file.hasSuffix(problem.file) && $0.line == problem.line && $0.message.contains(problem.says)
            }
            #expect(matches.count == 1, "\(problem) not reported once in:\n\(error)")
        }
        #expect(problems.count == expected.count, "\(error)")
        #expect(error.description.hasPrefix("10 problems:"))
    }
}

@Suite("Database URL as Hasura found it")
struct HasuraDatabaseURLTests {
    /// A metadata directory with `databases` as its databases.yaml (nil: the old layout, a
    /// single top-level tables.yaml) and one trigger; returns the config file's path.
    func project(databases: String?, herald: String = "hasura_metadata: metadata\n") throws -> String {
        let root = NSTemporaryDirectory() + "herald-project-\(UUID().uuidString)"
        let metadata = root + "/metadata"
        let tables = """
            - table: {schema: public, name: orders}
              event_triggers:
                - {name: t, definition: {insert: {columns: "*"}}, webhook: "http://127.0.0.1:9/x"}
            """
        if let databases {
            try FileManager.default.createDirectory(atPath: metadata + "/databases", withIntermediateDirectories: true)
            try databases.write(toFile: metadata + "/databases/databases.yaml", atomically: true, encoding: .utf8)
            try tables.write(toFile: metadata + "/databases/tables.yaml", atomically: true, encoding: .utf8)
        } else {
            try FileManager.default.createDirectory(atPath: metadata, withIntermediateDirectories: true)
            try tables.write(toFile: metadata + "/tables.yaml", atomically: true, encoding: .utf8)
        }
        try herald.write(toFile: root + "/herald.yaml", atomically: true, encoding: .utf8)
        return root + "/herald.yaml"
    }

    func source(databaseURL: String) -> String {
        """
        - name: default
          kind: postgres
          configuration:
            connection_info:
              database_url:
        \(databaseURL.split(separator: "\n").map { "          " + $0 }.joined(separator: "\n"))
          tables: "!include tables.yaml"
        """
    }

    @Test func connectionParametersBecomeOnePercentEncodedLibpqURL() throws {
        let path = try project(
            databases: source(
                databaseURL: """
                    connection_parameters:
                      host: db.example.com
                      port: 6432
                      database: my db
                      username: app@corp
                      password: "p@ss:w/rd%?"
                    """))
        let config = try ConfigLoader.load(path: path, environment: [:])
        #expect(config.database.url == "postgresql://app%40corp:p%40ss%3Aw%2Frd%25%3F@db.example.com:6432/my%20db")
        #expect(!ConfigSummary.text(for: config).contains("p%40ss"))
    }

    /// What libpq itself reads from `url` (PQconninfoParse), keyword by keyword.
    func libpqReads(_ url: String) throws -> [String: String] {
        var message: UnsafeMutablePointer<CChar>?
        let options = try #require(PQconninfoParse(url, &message), "libpq refused \(url)")
        defer { PQconninfoFree(options) }
        var values: [String: String] = [:]
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { values[String(cString: keyword)] = String(cString: value) }
            option += 1
        }
        return values
    }

    @Test func libpqReadsEveryConnectionParameterBackUnchanged() throws {
        let url = PostgresURI.make(
            host: "db.example.com", port: 6432, database: "my db/x?", username: "app@corp", password: "p@ss:w/rd%?#&=")
        let read = try libpqReads(url)
        #expect(read["host"] == "db.example.com")
        #expect(read["port"] == "6432")
        #expect(read["dbname"] == "my db/x?")
        #expect(read["user"] == "app@corp")
        #expect(read["password"] == "p@ss:w/rd%?#&=")
        #expect(try libpqReads(PostgresURI.make(host: "::1", port: 5432, database: "a", username: "u", password: nil))["host"]
            == "::1")
        #expect(try libpqReads(
            PostgresURI.make(host: "/var/run/postgresql", port: 5432, database: "a", username: "u", password: nil))["host"]
            == "/var/run/postgresql")
    }

    @Test func libpqURLBracketsIPv6AndEncodesASocketDirectory() {
        #expect(PostgresURI.make(host: "::1", port: 5432, database: "app", username: "app", password: nil)
            == "postgresql://app@[::1]:5432/app")
        #expect(PostgresURI.make(host: "/var/run/postgresql", port: 5432, database: "app", username: "app", password: "")
            == "postgresql://app:@%2Fvar%2Frun%2Fpostgresql:5432/app")
        #expect(PostgresURI.encode("é ~") == "%C3%A9%20~")
    }

    @Test func everyConnectionParametersProblemIsReported() throws {
        let path = try project(
            databases: source(
                databaseURL: """
                    connection_parameters:
                      port: x
                      database: app
                      username: {from_env: PGUSER}
                      sslmode: require
                    """))
        let error = try #require(loadFailure { () throws(ConfigError) in try ConfigLoader.load(path: path, environment: [:]) })
        let problems = allProblems(error)
        #expect(problems.count == 4, "\(error)")
        #expect(problems.allSatisfy { $0.file.hasSuffix("databases.yaml") && $0.line != nil })
        for expected in ["lacks 'host'", "expected an integer", "not from the environment", "unknown key 'sslmode'"] {
            #expect(problems.contains { $0.message.contains(expected) }, "\(expected) missing from: \(error)")
        }
    }

    @Test func databaseURLSettingBeatsConnectionParametersProblems() throws {
        let path = try project(databases: source(databaseURL: "connection_parameters: {port: x}"))
        let config = try ConfigLoader.load(path: path, environment: ["HERALD_DATABASE_URL": "postgres://h/app"])
        #expect(config.database.url == "postgres://h/app")
    }

    @Test func databaseURLStringIsATemplateAsInHasura() throws {
        let path = try project(databases: source(databaseURL: "'postgres://app@{{DB_HOST}}/app'"))
        let config = try ConfigLoader.load(path: path, environment: ["DB_HOST": "db.internal"])
        #expect(config.database.url == "postgres://app@db.internal/app")
        let error = try #require(loadFailure { () throws(ConfigError) in try ConfigLoader.load(path: path, environment: [:]) })
        #expect(error.code == .missingEnvironment)
        #expect(error.message.contains("DB_HOST"))
    }

    @Test func layoutWithoutDatabasesYamlReadsHasurasVariableLast() throws {
        let path = try project(databases: nil)
        let hasura = ["HASURA_GRAPHQL_DATABASE_URL": "postgres://hasura@h/app"]
        #expect(try ConfigLoader.load(path: path, environment: hasura).database.url == "postgres://hasura@h/app")
        var both = hasura
        both["HERALD_DATABASE_URL"] = "postgres://herald@h/app"
        #expect(try ConfigLoader.load(path: path, environment: both).database.url == "postgres://herald@h/app")
        let file = try project(databases: nil, herald: "hasura_metadata: metadata\ndatabase: {url: 'postgres://file@h/app'}\n")
        #expect(try ConfigLoader.load(path: file, environment: hasura).database.url == "postgres://file@h/app")
    }

    @Test func layoutWithoutDatabasesYamlAndNoURLNamesAllThreePlaces() throws {
        let path = try project(databases: nil)
        let error = try #require(loadFailure { () throws(ConfigError) in try ConfigLoader.load(path: path, environment: [:]) })
        for place in ["database.url", "HERALD_DATABASE_URL", "HASURA_GRAPHQL_DATABASE_URL"] {
            #expect(error.message.contains(place), "\(place) missing from: \(error)")
        }
    }

    @Test func bareTableListReadsHasurasVariableToo() throws {
        let yaml = """
            - table: {schema: public, name: orders}
              event_triggers:
                - {name: t, definition: {insert: {columns: "*"}}, webhook: "http://127.0.0.1:9/x"}
            """
        let config = try parse(yaml, environment: ["HASURA_GRAPHQL_DATABASE_URL": "postgres://hasura@h/app"])
        #expect(config.database.url == "postgres://hasura@h/app")
        let error = try #require(loadFailure { () throws(ConfigError) in try parse(yaml) })
        #expect(error.message.contains("HERALD_DATABASE_URL or HASURA_GRAPHQL_DATABASE_URL"))
    }
}

@Suite("Lease that fits the metadata")
struct DerivedLeaseTests {
    @Test func withoutAChosenLeaseEveryTimeoutFitsAndTheSummarySaysWhy() throws {
        let config = try parse(oneTriggerYAML(withKeys: "retry_conf: {timeout_sec: 300}"))
        #expect(config.worker.leaseSeconds == 600)
        #expect(config.worker.leaseOrigin == .derived(from: "trigger 't'", timeoutSeconds: 300))
        let summary = ConfigSummary.text(for: config)
        #expect(summary.contains("lease_seconds=600"))
        #expect(summary.contains("lease_seconds derived: 600"))
        #expect(summary.contains("twice the longest timeout (300s, trigger 't')"))
    }

    @Test func shortTimeoutsKeepTheDefaultLease() throws {
        let config = try parse(oneTriggerYAML(withKeys: "retry_conf: {timeout_sec: 60}"))
        #expect(config.worker.leaseSeconds == 300)
        #expect(config.worker.leaseOrigin == .setting)
        #expect(!ConfigSummary.text(for: config).contains("derived"))
    }

    @Test func theLongestTimeoutOfAnySourceDecidesAndIsNamedWithItsSource() throws {
        let config = try parse(
            """
            sources:
              - name: a
                database: {url: 'postgres://x@h/a'}
                tables:
                  - table: {schema: public, name: orders}
                    event_triggers:
                      - {name: quick, definition: {insert: {columns: "*"}}, webhook: "http://h/x", retry_conf: {timeout_sec: 200}}
              - name: b
                database: {url: 'postgres://x@h/b'}
                tables:
                  - table: {schema: public, name: orders}
                    event_triggers:
                      - {name: slow, definition: {insert: {columns: "*"}}, webhook: "http://h/x", retry_conf: {timeout_sec: 450}}
            """)
        #expect(config.worker.leaseSeconds == 900)
        #expect(config.worker.leaseOrigin == .derived(from: "trigger 'slow' of source 'b'", timeoutSeconds: 450))
    }

    static let slowCron = """
        cron_triggers:
          - {name: nightly, webhook: "http://127.0.0.1:9/n", schedule: "0 2 * * *", retry_conf: {timeout_seconds: 700}}

        """

    @Test func aCronTriggersTimeoutCountsAndIsNamedAsACronTrigger() throws {
        let config = try parse(oneTriggerYAML(withKeys: "retry_conf: {timeout_sec: 300}") + Self.slowCron)
        #expect(config.worker.leaseSeconds == 1400)
        #expect(config.worker.leaseOrigin == .derived(from: "cron trigger 'nightly'", timeoutSeconds: 700))
        let error = try #require(loadFailure { () throws(ConfigError) in
            try parse("worker: {lease_seconds: 600}\n" + oneTriggerYAML + Self.slowCron)
        })
        #expect(error.message.contains("cron trigger 'nightly' has timeout_seconds 700, not below lease_seconds (600)"))
        #expect(error.message.contains("lower its retry_conf.timeout_seconds"))
        #expect(error.line == 10)
    }

    @Test(arguments: [
        ("worker: {lease_seconds: 300}\n", [String: String]()),
        ("", ["HERALD_WORKER_LEASE_SECONDS": "300"]),
    ])
    func chosenLeaseBelowATimeoutStaysAnError(worker: String, environment: [String: String]) throws {
        let error = try #require(loadFailure { () throws(ConfigError) in
            try parse(worker + oneTriggerYAML(withKeys: "retry_conf: {timeout_sec: 300}"), environment: environment)
        })
        #expect(error.key == "worker.lease_seconds")
        #expect(error.message.contains("trigger 't' has timeout_sec 300"))
    }

    @Test func chosenLeaseAboveEveryTimeoutIsKeptAsChosen() throws {
        let config = try parse("worker: {lease_seconds: 301}\n" + oneTriggerYAML(withKeys: "retry_conf: {timeout_sec: 300}"))
        #expect(config.worker.leaseSeconds == 301)
        #expect(config.worker.leaseOrigin == .setting)
    }
}
