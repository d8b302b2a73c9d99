import Foundation
import Synchronization

/// Removes secrets from text about to be shown: the values a configuration holds (database
/// passwords, header values from the environment or templates, credentials written as
/// header values, signing secrets, the stats and console token, webhook credentials and
/// query values), then the secret parts of every URL (``Redaction/urls(in:)``).
///
/// Built once from the configuration and applied at each surface's last step (the log
/// handler, `check-config` and `preview-request` output, every /stats, /metrics and console
/// response), so a message that quotes a secret by accident, such as a receiver's response
/// or a libpq error, is covered as well as the fields known to hold one.
public struct Redactor: Sendable {
    /// Values shorter than this are not searched for: replacing every `abc` would make
    /// output unreadable while hiding little. Credentials are longer in practice.
    public static let minimumLength = 4

    /// Every form of every secret, longest first so that a secret containing another is
    /// replaced whole.
    let needles: [String]

    /// Only the URL rule, for text produced before a configuration is known.
    public static let urlsOnly = Redactor(secrets: [])

    public init(secrets: some Sequence<String>) {
        var forms = Set<String>()
        for secret in secrets where secret.count >= Self.minimumLength {
            forms.insert(secret)
            forms.insert(secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? secret)
            forms.insert(secret.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? secret)
            forms.insert(Self.jsonEscaped(secret))
            forms.insert(Self.jsonEscaped(secret).replacingOccurrences(of: "/", with: "\\/"))
            forms.insert(Markup.escape(secret))
        }
        needles = forms.sorted { $0.count != $1.count ? $0.count > $1.count : $0 < $1 }
    }

    /// The secrets `config` holds, found as described on the type. `environment` supplies
    /// the text of signing secrets, which the configuration keeps only decoded.
    public init(config: HeraldConfig, environment: [String: String] = ProcessInfo.processInfo.environment) {
        var secrets: [String] = []
        var databases = config.sources.map(\.database.url)
        databases.append(config.database.url)
        for url in databases { secrets += Redaction.databaseSecrets(url) }
        if let token = config.stats.bearerToken { secrets.append(token.value) }
        secrets += config.consumers.map(\.token.value)
        var deliveries: [(webhook: String, source: ValueSource, headers: [HeaderConfig], signing: SigningConfig?)] = []
        for trigger in config.sources.flatMap(\.triggers) + config.triggers {
            deliveries.append((trigger.webhook, trigger.webhookSource, trigger.headers, trigger.signing))
        }
        if let alerts = config.alerts {
            deliveries.append((alerts.webhook, alerts.webhookSource, alerts.headers, alerts.signing))
        }
        for delivery in deliveries {
            secrets += Self.urlSecrets(delivery.webhook)
            if case .template(let text) = delivery.source {
                secrets += Self.urlSecrets(text)
                // A variable may hold a whole base URL; its credentials are what must go.
                for variable in ValueSource.templateVariables(text) {
                    secrets += Self.urlSecrets(environment[variable] ?? "")
                }
            }
            secrets += delivery.headers.filter(\.isSecret).map(\.value)
            if let signing = delivery.signing {
                let encoded = Data(signing.key).base64EncodedString()
                secrets += [encoded, "whsec_" + encoded]
                if let text = environment[signing.secretEnvironmentVariable] { secrets.append(text) }
            }
        }
        self.init(secrets: secrets)
    }

    /// `text` with every configured secret and every URL's secret parts replaced by
    /// `placeholder` (an HTML page wants it escaped).
    public func callAsFunction(_ text: String, placeholder: String = Redaction.placeholder) -> String {
        Redaction.urls(in: values(in: text, placeholder: placeholder), placeholder: placeholder)
    }

    /// `text` with every configured secret replaced, URLs otherwise kept: for output whose
    /// point is to show a URL as built (`preview-request`: a transform's query string).
    public func values(in text: String, placeholder: String = Redaction.placeholder) -> String {
        var result = text
        for needle in needles where result.contains(needle) {
            result = result.replacingOccurrences(of: needle, with: placeholder)
        }
        return result
    }

    /// The password and query values of a URL (or template), which may show up detached
    /// from it, e.g. in a receiver's error page.
    static func urlSecrets(_ url: String) -> [String] {
        guard let scheme = url.range(of: "://") else { return [] }
        var secrets = Redaction.passwordForms(url)
        if !secrets.isEmpty, let at = url[scheme.upperBound...].firstIndex(of: "@") {
            // The Basic credentials curl sends for it, which a receiver may echo back.
            let userInfo = String(url[scheme.upperBound..<at])
            secrets.append(Data((userInfo.removingPercentEncoding ?? userInfo).utf8).base64EncodedString())
        }
        let authorityEnd = url[scheme.upperBound...].firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? url.endIndex
        if let question = url[authorityEnd...].firstIndex(of: "?") {
            let query = url[url.index(after: question)...].prefix { $0 != "#" }
            for pair in query.split(separator: "&") {
                guard let equals = pair.firstIndex(of: "=") else { continue }
                let value = String(pair[pair.index(after: equals)...])
                secrets += [value, value.removingPercentEncoding].compactMap { $0 }
            }
        }
        return secrets
    }

    /// The secret as it stands inside a JSON string literal.
    private static func jsonEscaped(_ text: String) -> String {
        String(DeliveryRequest.json(text).dropFirst().dropLast())
    }
}

/// The process's redactor, for the one place that cannot be handed one: the log handler,
/// bootstrapped before the configuration is read. Set once the configuration is loaded.
public final class ProcessRedactor: Sendable {
    public static let shared = ProcessRedactor()

    private let current = Mutex(Redactor.urlsOnly)

    public var redactor: Redactor { current.withLock { $0 } }

    public func set(_ redactor: Redactor) {
        current.withLock { $0 = redactor }
    }
}
