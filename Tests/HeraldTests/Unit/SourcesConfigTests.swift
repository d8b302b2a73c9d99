import Testing

@testable import Herald

/// `sources:`: several databases in one configuration, and the single-database form as the
/// source `default`.
@Suite("Sources configuration")
struct SourcesConfigTests {
    /// One source entry with trigger `t` (its webhook on `port`).
    static func source(_ name: String, database: String, trigger: String = "t", port: Int = 9) -> String {
        """
          - name: \(name)
            database: \(database)
            tables:
              - table: {schema: public, name: orders}
                event_triggers:
                  - name: \(trigger)
                    definition: {insert: {columns: "*"}}
                    webhook: http://127.0.0.1:\(port)/x

        """
    }

    static let twoSources =
        "sources:\n" + source("main", database: "{url: 'postgres://app:pw@db1/app'}")
        + source("billing", database: "{url_from_env: BILLING_DATABASE_URL}", port: 10)

    func parse(_ yaml: String, environment: [String: String] = [:]) throws(ConfigError) -> HeraldConfig {
        try ConfigLoader.parse(yaml: yaml, file: "herald.yaml", environment: environment)
    }

    func failure(_ yaml: String) -> ConfigError? {
        guard case .failure(let error) = Result(catching: { () throws(ConfigError) in try parse(yaml) }) else { return nil }
        return error
    }

    @Test func singleDatabaseFormIsOneSourceNamedDefault() throws {
        let config = try parse(oneTriggerYAML, environment: ["HERALD_DATABASE_URL": "postgres://env@db/app"])
        #expect(config.sources.map(\.name) == ["default"])
        #expect(config.sources[0].database.url == "postgres://env@db/app")
        #expect(config.sources[0].triggers.filter(\.isEventTrigger).map(\.name) == ["t"])
        #expect(!config.usesSourcesList)
        #expect(try config.source(named: nil).name == "default")
    }

    @Test func sourcesListLoadsEachDatabaseAndItsTriggers() throws {
        let config = try parse(Self.twoSources, environment: ["BILLING_DATABASE_URL": "postgres://b@db2/billing"])
        #expect(config.usesSourcesList)
        #expect(config.sources.map(\.name) == ["main", "billing"])
        #expect(config.sources[0].database.url == "postgres://app:pw@db1/app")
        #expect(config.sources[1].database.url == "postgres://b@db2/billing")
        // Trigger names repeat across sources: they are per database.
        #expect(config.sources.map { $0.triggers.filter(\.isEventTrigger).map(\.name) } == [["t"], ["t"]])
        #expect(config.sources[1].triggers[0].webhook == "http://127.0.0.1:10/x")
        let billing = config.scoped(to: try config.source(named: "billing"))
        #expect(billing.database.url == "postgres://b@db2/billing" && billing.sources.map(\.name) == ["billing"])
        #expect(billing.triggers[0].webhook == "http://127.0.0.1:10/x")
    }

    @Test func summaryListsSourcesWithoutPasswords() throws {
        let config = try parse(Self.twoSources, environment: ["BILLING_DATABASE_URL": "postgres://b:secret@db2/billing"])
        let text = ConfigSummary.text(for: config)
        #expect(text.contains("sources: 2"))
        #expect(text.contains("source main: postgres://app:***@db1/app, 1 triggers"))
        #expect(text.contains("source billing: postgres://b:***@db2/billing, 1 triggers"))
        #expect(!text.contains("secret") && !text.contains(":pw@"))
    }

    @Test func choosingASourceNamesTheOnesThereAre() throws {
        let config = try parse(Self.twoSources, environment: ["BILLING_DATABASE_URL": "postgres://b@db2/billing"])
        #expect(throws: ConfigError.self) { try config.source(named: nil) }
        do {
            _ = try config.source(named: "nope")
            Issue.record("an unknown source was accepted")
        } catch {
            #expect(error.message == "no source named 'nope' (the configuration has: main, billing)")
        }
    }

    @Test(arguments: [
        (
            "sources:\n" + source("a", database: "{url: 'postgres://x@h/a'}") + source("a", database: "{url: 'postgres://x@h/b'}"),
            "duplicate source name 'a'"
        ),
        (
            "database: {url: 'postgres://x@h/a'}\nsources:\n" + source("a", database: "{url: 'postgres://x@h/a'}"),
            "set either sources (one entry per database) or database"
        ),
        (
            "sources:\n" + source("a", database: "{}"),
            "source 'a' has no database URL"
        ),
        (
            "sources:\n" + source("a", database: "{url: 'postgres://x@h/a', url_from_env: X}"),
            "set either url or url_from_env, not both"
        ),
        (
            "sources:\n" + source("a", database: "{url_from_env: NOT_SET_ANYWHERE}"),
            "environment variable NOT_SET_ANYWHERE (the database URL of source 'a') is not set"
        ),
        (
            "sources:\n  - name: a\n    database: {url: 'postgres://x@h/a'}\n    tabels: []\n",
            "unknown key 'tabels'"
        ),
        (
            "sources:\n" + source("a", database: "{url: 'postgres://x@h/a', host: h}"),
            "unknown key 'host'"
        ),
        (
            "sources:\n" + source("9lives", database: "{url: 'postgres://x@h/a'}"),
            "invalid source name '9lives'"
        ),
        ("sources: []\n", "sources lists no source"),
    ])
    func badSourcesAreRefusedNamingTheCulprit(yaml: String, expected: String) {
        let error = failure(yaml)
        #expect(error?.description.contains(expected) == true, "got: \(error?.description ?? "no error")")
    }

    @Test func aBadTriggerInOneSourceIsReportedWithTheOtherSourcesProblems() {
        let yaml =
            "sources:\n" + Self.source("a", database: "{url_from_env: MISSING_A}")
            + Self.source("b", database: "{url: 'postgres://x@h/b'}", trigger: "bad name")
        let error = failure(yaml)
        let text = error?.description ?? ""
        #expect(text.contains("MISSING_A") && text.contains("invalid trigger name 'bad name'"), "got: \(text)")
    }
}
