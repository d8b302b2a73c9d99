import Foundation
import Logging
import Testing

@testable import Herald

/// Issue 18, finding 5: a distinct secret planted in every place a configuration can hold
/// one, then every surface that shows configuration, URLs or errors searched for each.
@Suite("Secrets never shown", .enabled(if: TestEnvironment.integrationEnabled))
struct SecretRedactionTests {
    /// Each planted secret by where it was planted, so a failure names the leak.
    static let signingKey = Data("planted-signing-key-0123".utf8).base64EncodedString()
    static let secrets: [String: String] = [
        "database password": "dbpw-Planted1x",
        "webhook password": "hookpw-Planted2x",
        "webhook query token": "hookq-Planted3x",
        "templated webhook password": "tplpw-Planted4x",
        "templated webhook base from env": "tplenv-Planted5x",
        "header from env": "hdr-Planted6x",
        "signing secret": signingKey,
        "alerts webhook password": "alertpw-Planted7x",
        "alerts webhook token": "alertq-Planted8x",
        "console token": "console-Planted9x",
        "malformed database URL password": "s3cr%zzet-Planted10x",
        // What curl sends for the webhook's userinfo, echoed back by the receiver.
        "webhook basic auth": Data("hook:hookpw-Planted2x".utf8).base64EncodedString(),
    ]

    static func leaks(in surfaces: [String: String]) -> [String] {
        var found: [String] = []
        for (surface, text) in surfaces {
            for (place, secret) in secrets where text.contains(secret) || text.contains(secret.prefix(9)) {
                found.append("\(place) shown in \(surface)")
            }
        }
        return found.sorted()
    }

    @Test func plantedSecretsAppearInNoOutput() throws {
        let database = try TestDatabase()
        let receiver = try Receiver()
        let connection = try database.connect()
        try connection.execute(script: "CREATE TABLE items (id serial PRIMARY KEY, name text)")
        var components = try #require(URLComponents(string: database.url))
        components.user = components.user ?? "postgres"
        components.password = Self.secrets["database password"]
        let databaseURL = try #require(components.string)
        let port = try freePort()
        let receiverHost = "127.0.0.1:\(receiver.port)"
        let yaml = """
            database: {url: '\(databaseURL)'}
            worker: {fetch_interval_ms: 100, recorder_flush_interval_ms: 5, stats_log_interval_seconds: 1}
            stats: {listen: '127.0.0.1:\(port)', bearer_token_env: PLANTED_CONSOLE}
            alerts:
              webhook: 'http://alerts:\(Self.secrets["alerts webhook password"]!)@\(receiverHost)/ok?token=\(Self.secrets["alerts webhook token"]!)'
              digest_interval_sec: 1
            tables:
              - table: {schema: public, name: items}
                event_triggers:
                  - name: literal_hook
                    definition: {insert: {columns: "*"}, enable_manual: true}
                    retry_conf: {num_retries: 0, interval_sec: 0, timeout_sec: 5}
                    webhook: 'http://hook:\(Self.secrets["webhook password"]!)@\(receiverHost)/echo?token=\(Self.secrets["webhook query token"]!)'
                    headers: [{name: X-Custom, value_from_env: PLANTED_HEADER}]
                    signing: {secret_from_env: PLANTED_SIGNING}
                  - name: template_hook
                    definition: {insert: {columns: "*"}}
                    retry_conf: {num_retries: 0, interval_sec: 0, timeout_sec: 5}
                    webhook: 'http://tpl:\(Self.secrets["templated webhook password"]!)@{{PLANTED_HOST}}/status/500'
                  - name: env_template_hook
                    definition: {insert: {columns: "*"}}
                    retry_conf: {num_retries: 0, interval_sec: 0, timeout_sec: 5}
                    webhook: '{{PLANTED_BASE}}/status/500'
            """
        let path = try temporaryFile(yaml)
        let environment = [
            "PLANTED_CONSOLE": Self.secrets["console token"]!, "PLANTED_HEADER": Self.secrets["header from env"]!,
            "PLANTED_SIGNING": "whsec_" + Self.signingKey, "PLANTED_HOST": receiverHost,
            "PLANTED_BASE": "http://env:\(Self.secrets["templated webhook base from env"]!)@\(receiverHost)",
        ]
        let config = try ConfigLoader.parse(yaml: yaml, file: path, environment: environment)
        try TriggerInstaller(config: config, logger: Logger(label: "t")).install(connection)
        try connection.execute(script: "INSERT INTO items (name) VALUES ('a'), ('b')")

        var surfaces: [String: String] = [:]
        let check = try runHerald(["check-config", "--config", path], environment: environment)
        #expect(check.status == 0, "\(check.stderr)")
        surfaces["check-config stdout"] = check.stdout
        surfaces["check-config stderr"] = check.stderr

        let payload = try temporaryFile(#"{"event": {"op": "INSERT"}}"#, suffix: ".json")
        let preview = try runHerald(
            ["preview-request", "literal_hook", "--payload", payload, "--config", path], environment: environment)
        #expect(preview.stdout.contains("POST"), "\(preview.stderr)")
        surfaces["preview-request"] = preview.stdout + preview.stderr

        // libpq quotes the token it cannot decode; here that token is the password.
        let malformed = "postgres://app:\(Self.secrets["malformed database URL password"]!)@127.0.0.1:1/app"
        let libpq = try runHerald(
            ["stats", "--config", path], environment: environment.merging(["HERALD_DATABASE_URL": malformed]) { $1 })
        #expect(libpq.status != 0)
        #expect(libpq.stderr.contains("percent-encoded"), "\(libpq.stderr)")
        surfaces["libpq connection error"] = libpq.stdout + libpq.stderr

        let worker = try WorkerProcess(configPath: path, environment: environment)
        let base = "http://127.0.0.1:\(port)"
        let auth = ["Authorization: Bearer \(Self.secrets["console token"]!)"]
        #expect(
            try eventually(timeout: 30) {
                try connection.query("SELECT count(*) FROM herald.event_log WHERE status = 'failed'")[0, 0] == "6"
            }, "\(worker.log)")
        // The failed events raise alerts; the dispatcher's log lines carry its webhook.
        var alertBodies: [String] = []
        #expect(
            try eventually(timeout: 30) {
                alertBodies = try receiver.requests().filter { $0.header("webhook-id")?.hasPrefix("alert_") == true }
                    .map(\.body)
                return alertBodies.contains { $0.contains("literal_hook") }
            }, "\(worker.log)")
        #expect(worker.log.contains("alerts enabled"))
        let eventNumber = try #require(try connection.query("SELECT min(id) FROM herald.event_log WHERE trigger_name = 'literal_hook'")[0, 0])
        for page in ["/stats", "/metrics", "/console", "/console/events", "/console/events/\(eventNumber)"] {
            let response = try httpGet(base + page, headers: auth)
            #expect(response.status == 200, "\(page): \(response.body)")
            surfaces[page] = response.body
        }
        _ = worker.terminate()
        surfaces["worker log"] = worker.log
        // The literal trigger's receiver echoes its request (headers, query) in a 500 body, which
        // is stored, shown on the event page and quoted in the failed-event alert.
        #expect(alertBodies.contains { $0.contains("X-Custom: <redacted>") }, "\(alertBodies)")
        #expect(surfaces["/console/events/\(eventNumber)"]?.contains("X-Custom: &lt;redacted&gt;") == true)
        surfaces["alert bodies"] = alertBodies.joined(separator: "\n")
        #expect(surfaces["worker log"]?.contains("alerts") == true)

        #expect(Self.leaks(in: surfaces) == [])
    }
}
