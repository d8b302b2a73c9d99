import Foundation
import Logging
import Testing

@testable import Herald

@Suite("Redaction")
struct RedactionTests {
    @Test func urlsInTextLoseUserinfoQueryAndFragmentWhereverTheyStand() {
        #expect(
            Redaction.urls(in: "POST http://admin:hunter2@h.example:81/p?token=abc failed")
                == "POST http://<redacted>@h.example:81/p?<redacted> failed")
        #expect(Redaction.urls(in: #"{"url":"https://h/x#frag"}"#) == #"{"url":"https://h/x#<redacted>"}"#)
        #expect(Redaction.urls(in: "http://u:p@{{HOST}}/x?k={{KEY}}") == "http://<redacted>@{{HOST}}/x?<redacted>")
        #expect(Redaction.urls(in: "http://[::1]:8080/path") == "http://[::1]:8080/path")
        #expect(Redaction.urls(in: "no url here: a@b?c") == "no url here: a@b?c")
    }

    @Test func templatedAndAlertsWebhooksShowNoCredentials() throws {
        var trigger = TriggerConfig(name: "t", table: TableName(schema: "public", name: "x"), webhook: "http://a:b@h/x")
        trigger.webhookSource = .template("http://admin:hunter2@{{HOST}}/x?token=abc")
        #expect(trigger.displayWebhook == "http://<redacted>@{{HOST}}/x?<redacted>")
        var alerts = AlertsConfig(webhook: "https://ops:hunter2@ops.example/alerts?token=abc")
        #expect(alerts.displayWebhook == "https://<redacted>@ops.example/alerts?<redacted>")
        alerts.webhookSource = .template("{{BASE}}/alerts?token=abc")
        #expect(alerts.displayWebhook == "{{BASE}}/alerts?<redacted>")
    }

    @Test func libpqMessagesLoseWhatTheyQuoteFromThePassword() {
        let url = "postgres://app:s3cr%zzet@db.example:5432/app"
        #expect(
            Redaction.connectionMessage(#"invalid percent-encoded token: "s3cr%zzet""#, url: url)
                == #"invalid percent-encoded token: "<redacted>""#)
        #expect(
            Redaction.connectionMessage(#"could not translate host name "db.example" to address"#, url: url)
                == #"could not translate host name "db.example" to address"#)
        #expect(
            Redaction.connectionMessage("password authentication failed for user \"app\"", url: url)
                == "password authentication failed for user \"app\"")
        #expect(Redaction.databaseURL("host=db password='a b' user=x") == "host=db password=<redacted> user=x")
        #expect(Redaction.databaseURL("postgres://u@h/db?sslpassword=k3y&sslmode=require") == "postgres://u@h/db?sslpassword=<redacted>&sslmode=require")
    }

    @Test func redactorFindsConfiguredSecretsInEveryEscapedForm() {
        let redact = Redactor(secrets: [#"pa"ss/wo<rd"#, "abc"])
        #expect(redact(#"raw pa"ss/wo<rd"#) == "raw <redacted>")
        #expect(redact(#"json "pa\"ss\/wo<rd""#) == #"json "<redacted>""#)
        #expect(redact("html pa&quot;ss/wo&lt;rd") == "html <redacted>")
        #expect(redact("form pa%22ss%2Fwo%3Crd") == "form <redacted>")
        // Too short to search for without destroying the text.
        #expect(redact("abc") == "abc")
    }

    @Test func configSecretsAreCollectedFromEveryPlace() throws {
        let yaml = """
            database: {url: 'postgres://app:db-secret-1@127.0.0.1/app'}
            stats: {listen: '127.0.0.1:9464', bearer_token_env: TOKEN}
            alerts: {webhook: 'https://ops:alert-secret-2@ops.example/a?token=alert-token-3'}
            tables:
              - table: {schema: public, name: orders}
                event_triggers:
                  - name: t
                    definition: {insert: {columns: "*"}}
                    webhook: '{{BASE}}/orders'
                    headers: [{name: X-Custom, value_from_env: HEADER}]
                    signing: {secret_from_env: SIGNING}
            """
        let environment = [
            "TOKEN": "console-token-4", "BASE": "http://u:base-secret-5@h", "HEADER": "header-secret-6",
            "SIGNING": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ]
        let config = try ConfigLoader.parse(yaml: yaml, file: "t.yaml", environment: environment)
        let redact = Redactor(config: config, environment: environment)
        let text = "db-secret-1 alert-secret-2 alert-token-3 console-token-4 base-secret-5 header-secret-6 "
            + "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        #expect(redact(text) == Array(repeating: "<redacted>", count: 8).joined(separator: " "))
    }

    @Test func logLinesAreRedactedInMessageAndMetadata() {
        final class Captured: @unchecked Sendable { var lines: [String] = [] }
        struct Capturing: LogHandler {
            let captured: Captured
            var logLevel: Logger.Level = .trace
            var metadata: Logger.Metadata = [:]
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                captured.lines.append("\(event.message) \(event.metadata ?? [:])")
            }
        }
        let captured = Captured()
        let process = ProcessRedactor()
        process.set(Redactor(secrets: ["sekrit-value"]))
        var logger = Logger(label: "t") { _ in RedactingLogHandler(Capturing(captured: captured), redactor: process) }
        logger[metadataKey: "webhook"] = "http://u:p@h/x?q=1"
        logger.error("failed with sekrit-value", metadata: ["error": "got sekrit-value back"])
        #expect(captured.lines.count == 1)
        #expect(!captured.lines[0].contains("sekrit-value"))
        #expect(!captured.lines[0].contains("u:p@"))
        #expect(captured.lines[0].contains("failed with <redacted>"))
    }
}
