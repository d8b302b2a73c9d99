/// A table, by schema and name, exactly as PostgreSQL spells them (case and spaces kept).
public struct TableName: Hashable, Sendable, CustomStringConvertible {
    public var schema: String
    public var name: String

    public init(schema: String, name: String) {
        self.schema = schema
        self.name = name
    }

    /// `"schema"."name"`, safe to splice into DDL.
    public var quoted: String { SQLQuoting.qualified(schema: schema, name: name) }

    public var description: String { "\(schema).\(name)" }
}

/// Hasura's `columns` / `payload`: every column, or a list.
public enum ColumnSelection: Sendable, Equatable {
    case all
    case only([String])
}

/// One operation (insert, update or delete) a trigger fires on.
public struct OperationSpec: Sendable, Equatable {
    /// For UPDATE: the columns whose change fires the trigger.
    public var columns: ColumnSelection = .all
    /// The columns sent in data.old / data.new.
    public var payload: ColumnSelection = .all

    public init(columns: ColumnSelection = .all, payload: ColumnSelection = .all) {
        self.columns = columns
        self.payload = payload
    }
}

/// Hasura's `retry_conf`, with Hasura's defaults.
public struct RetryConfig: Sendable, Equatable {
    public var numRetries = 0
    public var intervalSeconds = 10
    public var timeoutSeconds = 60

    public init(numRetries: Int = 0, intervalSeconds: Int = 10, timeoutSeconds: Int = 60) {
        self.numRetries = numRetries
        self.intervalSeconds = intervalSeconds
        self.timeoutSeconds = timeoutSeconds
    }

    /// Attempts in total before an event is marked failed.
    public var maxAttempts: Int { numRetries + 1 }
}

/// Herald's `retry_backoff` extension.
public struct RetryBackoff: Sendable, Equatable {
    public enum Strategy: String, Sendable, CaseIterable { case fixed, exponential }

    public var strategy: Strategy = .fixed
    public var maxIntervalSeconds = 3600

    public init(strategy: Strategy = .fixed, maxIntervalSeconds: Int = 3600) {
        self.strategy = strategy
        self.maxIntervalSeconds = maxIntervalSeconds
    }
}

/// Where a configured value came from; values from the environment are treated as secret.
public enum ValueSource: Sendable, Equatable, CustomStringConvertible {
    case literal
    case environment(String)
    /// Hasura's `{{NAME}}` substitution inside a literal; holds the unexpanded text.
    case template(String)

    public var isSecret: Bool {
        if case .literal = self { return false }
        return true
    }

    public var description: String {
        switch self {
        case .literal: "literal"
        case .environment(let name): "env \(name)"
        // Only the variables: the literal part may be half a credential (`Bearer sk_{{SUFFIX}}`).
        case .template(let text): "template reading \(Self.templateVariables(text).joined(separator: ", "))"
        }
    }

    /// The names a `{{NAME}}` template reads, in order.
    static func templateVariables(_ text: String) -> [String] {
        text.matches(of: /\{\{\s*([^}\s]*)\s*\}\}/).map { String($0.output.1) }
    }
}

/// A request header sent with every delivery of a trigger. The value is held as a
/// ``Secret`` so that printing a header (or a whole trigger) never shows it.
public struct HeaderConfig: Sendable, Equatable {
    public var name: String
    private var storedValue: Secret
    public var source: ValueSource

    public init(name: String, value: String, source: ValueSource) {
        self.name = name
        storedValue = Secret(value)
        self.source = source
    }

    public var value: String {
        get { storedValue.value }
        set { storedValue = Secret(newValue) }
    }

    /// Shown as `<redacted>` in invocation rows and the console: values from the
    /// environment, and credentials by name (`Authorization`, `X-Api-Key`, `*token*`, …)
    /// even when written literally in the config.
    public var isSecret: Bool { source.isSecret || Redaction.isSensitiveHeader(name) }

    /// The value as `check-config` and logs may show it: where a secret comes from, never
    /// the secret. A template shows only the variables it reads (see ``ValueSource/description``).
    public var displayValue: String {
        switch source {
        case .environment(let variable): "<env \(variable)>"
        case .template(let text): "<env \(ValueSource.templateVariables(text).joined(separator: ", "))>"
        case .literal: isSecret ? Redaction.placeholder : value
        }
    }
}

/// Standard Webhooks signing. The key never appears in `description`.
public struct SigningConfig: Sendable, Equatable, CustomStringConvertible {
    public var secretEnvironmentVariable: String
    /// The decoded HMAC key.
    public var key: [UInt8]

    public var description: String { "signing(secret from env \(secretEnvironmentVariable))" }
}

/// One event trigger: what to capture from which table, and where and how to deliver it.
public struct TriggerConfig: Sendable, Equatable {
    public var name: String
    public var table: TableName
    public var insert: OperationSpec?
    public var update: OperationSpec?
    public var delete: OperationSpec?
    public var enableManual = false
    public var retry = RetryConfig()
    public var backoff = RetryBackoff()
    /// The resolved webhook URL; may carry credentials, so it is held as a ``Secret``.
    public var webhook: String {
        get { storedWebhook.value }
        set { storedWebhook = Secret(newValue) }
    }
    private var storedWebhook: Secret
    public var webhookSource: ValueSource = .literal
    public var headers: [HeaderConfig] = []
    public var signing: SigningConfig?
    /// Hasura's `request_transform`, compiled; nil sends Herald's payload as it is.
    public var requestTransform: RequestTransform?
    /// Rate limit, circuit breaker and what the receiver may stop (Herald extensions).
    public var protection = TriggerProtection()
    /// Per-key ordered delivery (Herald extension); nil delivers without ordering.
    public var ordering: OrderingConfig?
    /// The consumer group that pulls this trigger's events (`delivery: {pull: NAME}`); nil
    /// for a webhook trigger, which the worker posts.
    public var pullConsumer: String?
    /// Many events per request (Herald extension); nil sends one event per request.
    public var batch: BatchConfig?
    /// Herald's `filter:`: which row changes become events (nil: all of them).
    public var filter: RowFilter?
    /// Hasura's `comment`: shown by `check-config`, not sent.
    public var comment: String?
    /// Hasura's `trigger_on_replication`: the capture triggers also fire for rows applied by
    /// logical replication (`ENABLE ALWAYS`).
    public var triggerOnReplication = false
    /// Hasura's `cleanup_config`: this trigger's own scheduled cleanup.
    public var cleanup: CleanupConfig?
    /// Where the trigger is defined, for messages about it.
    public var location: ConfigLocation?
    /// How `created_at` is written in the payload (`payload_compat.created_at`).
    public var createdAtFormat: CreatedAtFormat = .utc
    /// Set for scheduled triggers (cron triggers and the one-off route); nil for event triggers.
    public var schedule: ScheduledDelivery?

    public init(name: String, table: TableName, webhook: String) {
        self.name = name
        self.table = table
        storedWebhook = Secret(webhook)
    }

    /// The webhook as it may be printed (/stats, the console, logs): a URL from the
    /// environment is named by its variable; user, password and query string are redacted.
    public var displayWebhook: String {
        if let pullConsumer { return "pull consumer \(pullConsumer)" }
        return switch webhookSource {
        case .literal: Redaction.url(webhook)
        case .environment(let name): "<env \(name)>"
        // The template's own text may carry credentials (`http://user:pw@{{HOST}}/x`).
        case .template(let text): Redaction.redactQuery(Redaction.urls(in: text))
        }
    }
}

/// A file and line in the configuration (or a metadata file it includes).
public struct ConfigLocation: Sendable, Equatable {
    public var file: String
    public var line: Int?
}

/// `created_at` in the payload: Herald's RFC 3339 UTC form with `Z`, or Hasura's form
/// without an offset (`2026-11-22T10:15:30.123456`) for receivers that parse only that.
public enum CreatedAtFormat: String, Sendable, Equatable, CaseIterable {
    case utc = "herald"
    case hasura
}

/// Hasura's per-trigger `cleanup_config`, run by the worker on top of Herald's retention:
/// deletes this trigger's delivered and failed events `clearOlderThanHours` after they
/// finished, `batchSize` rows per statement, at the times `schedule` names (UTC).
public struct CleanupConfig: Sendable, Equatable {
    public var schedule: CronSchedule
    public var clearOlderThanHours: Int
    public var batchSize = 10000
    /// Seconds one batch may take (Hasura's `timeout`).
    public var timeoutSeconds = 60
    public var paused = false

    public init(schedule: CronSchedule, clearOlderThanHours: Int) {
        self.schedule = schedule
        self.clearOlderThanHours = clearOlderThanHours
    }
}

/// Everything `herald` reads from its configuration file and environment.
public struct HeraldConfig: Sendable, Equatable {
    /// The file it was read from, for messages.
    public var file: String
    public var database = DatabaseSettings()
    public var worker = WorkerSettings()
    public var stats = StatsSettings()
    public var console = ConsoleSettings()
    public var retention = RetentionSettings()
    /// Nil unless the log is range-partitioned (`partitioning:`).
    public var partitioning: PartitioningSettings?
    /// The first source's triggers (the only source's, in the single-database form).
    public var triggers: [TriggerConfig] = []
    /// Every database served, in file order; one named `default` in the single-database form.
    public var sources: [SourceConfig] = []
    /// True when the file lists `sources:` (metrics then carry a `source` label).
    public var usesSourcesList = false
    /// Where operator alerts go; nil when the `alerts:` section is absent.
    public var alerts: AlertsConfig?
    /// Pull consumer groups (`consumers:`), served on the worker's listener.
    public var consumers: [ConsumerConfig] = []
    /// What is not wrong enough to refuse but is most likely a mistake (a misspelt
    /// `HERALD_*` variable): every command prints these, `run` logs them.
    public var warnings: [String] = []

    public init(file: String) {
        self.file = file
    }

    public func trigger(named name: String) -> TriggerConfig? {
        triggers.first { $0.name == name }
    }
}
