/// Where to find the database.
public struct DatabaseSettings: Sendable, Equatable {
    /// A libpq connection URI or keyword string. May hold a password (so it is held as a
    /// ``Secret``): print ``redactedURL`` instead.
    public var url: String {
        get { storedURL.value }
        set { storedURL = Secret(newValue) }
    }
    private var storedURL = Secret("")
    /// Where ``url`` came from (`database.url in herald.yaml`, `$HERALD_DATABASE_URL, which
    /// overrides …`): when several places can set it, a connection failure must say which won.
    public var urlOrigin = ""

    /// The URL with any password replaced, for logs and summaries.
    public var redactedURL: String { Self.redact(url) }

    static func redact(_ url: String) -> String {
        Redaction.databaseURL(url, mask: "***")
    }
}

/// Tuning of `herald run`. Names follow the YAML keys; Hasura's equivalents are noted.
public struct WorkerSettings: Sendable, Equatable {
    /// Concurrent deliveries (Hasura: HASURA_GRAPHQL_EVENTS_HTTP_POOL_SIZE).
    public var httpPoolSize = 100
    /// Concurrent deliveries to one host:port, so one slow receiver cannot take the pool.
    public var httpPerHostLimit = 100
    /// Delivery threads, each with its own libcurl multi handle, sharing the pool and its
    /// limits. One thread sends well over 10k requests/s; more help only with spare cores.
    public var httpThreads = 1
    /// Events claimed per query (Hasura: HASURA_GRAPHQL_EVENTS_FETCH_BATCH_SIZE).
    public var fetchBatchSize = 100
    /// Poll interval when no NOTIFY arrives (Hasura: HASURA_GRAPHQL_EVENTS_FETCH_INTERVAL).
    public var fetchIntervalMilliseconds = 1000
    /// How long a claim is held before any worker may take the event again. Without
    /// `lease_seconds` in the file or the environment, raised so that every trigger's
    /// timeout fits (``derivedLeaseSeconds(longestTimeout:)``).
    public var leaseSeconds = WorkerSettings.defaultLeaseSeconds
    /// Where ``leaseSeconds`` came from, for `check-config`.
    public var leaseOrigin = LeaseOrigin.setting
    /// How long SIGTERM waits for in-flight deliveries.
    public var shutdownGraceSeconds = 30
    /// Period of the aggregated fetch-statistics log line.
    public var statsLogIntervalSeconds = 60
    /// Response bytes read per delivery; the rest is discarded unread.
    public var maxResponseBytes = 65536
    /// Response bytes kept in an invocation row.
    public var storedResponseBytes = 4096
    /// The recorder writes when this many results wait…
    public var recorderFlushSize = 256
    /// …or when the oldest has waited this long.
    public var recorderFlushIntervalMilliseconds = 20
    /// Upper bound on a receiver's Retry-After.
    public var maxRetryAfterSeconds = 3600
    /// How often a claimer looks for new events in a Citus worker node's log: writers there
    /// cannot NOTIFY (two-phase commit refuses it), so the node's claimer polls.
    public var citusPollIntervalMilliseconds = 50
    /// How often the worker reads a Citus coordinator's node list, to follow nodes added
    /// to or removed from the cluster.
    public var citusNodeWatchSeconds = 10

    public init() {}

    public static let defaultLeaseSeconds = 300

    /// The lease when none was chosen: twice the longest timeout, so that a job may wait one
    /// full round of requests that each run to that timeout and still start before its
    /// deadline (lease − timeout, after which FlowControl drops it unsent), and never below
    /// the default.
    public static func derivedLeaseSeconds(longestTimeout: Int) -> Int {
        max(defaultLeaseSeconds, 2 * longestTimeout)
    }

    /// Why ``leaseSeconds`` has its value.
    public enum LeaseOrigin: Sendable, Equatable {
        /// The default, or `worker.lease_seconds` / `HERALD_WORKER_LEASE_SECONDS`.
        case setting
        /// Raised above the default for the longest timeout: whose (`trigger 'x'`), and how long.
        case derived(from: String, timeoutSeconds: Int)
    }
}

/// The HTTP stats endpoint.
public struct StatsSettings: Sendable, Equatable {
    /// host:port to bind; empty disables the endpoint.
    public var listen = "127.0.0.1:9464"
    /// Name of an environment variable holding a bearer token required by every request
    /// except /healthz.
    public var bearerTokenEnv = ""
    /// The token read from that variable at load time; never printed.
    public var bearerToken: Secret?
    /// Lets a non-loopback `listen` run without a token; refused otherwise, because the
    /// console can redeliver events and /stats describes the deployment.
    public var allowUnauthenticated = false
    /// Seconds a connection to the listener (stats and console) may sit without sending a
    /// complete request part before it is closed: bounds idle keep-alive connections and
    /// clients that send headers slowly or never finish them, which would otherwise hold
    /// file descriptors the worker needs for libpq and curl.
    public var idleTimeoutSeconds = 30

    public init() {}
}

/// The web console served under /console on the stats listener (and by `herald console`).
public struct ConsoleSettings: Sendable, Equatable {
    /// Serve /console at all.
    public var enabled = true
    /// Hides and refuses every action, so the console works with a SELECT-only role.
    public var readOnly = false
    /// The console's address as people reach it (through a proxy, say): links in log lines
    /// and the "link to this page" of every page start with it.
    public var publicURL = ""
    /// Database connections (and threads) the console uses at most; requests beyond them
    /// wait briefly for one, then get 503. Keeps a burst of page loads from taking the
    /// server's connection slots the worker needs.
    public var connections = 4

    public init() {}

    static let keys = ["enabled", "read_only", "public_url", "connections"]
}

/// One integer setting: its YAML key, where it lives, and the smallest value that makes sense.
struct IntegerSetting<Root> {
    let key: String
    let keyPath: WritableKeyPath<Root, Int>
    let minimum: Int
}

/// One string setting.
struct StringSetting<Root> {
    let key: String
    let keyPath: WritableKeyPath<Root, String>
}

extension WorkerSettings {
    static var integerSettings: [IntegerSetting<WorkerSettings>] {
        [
            .init(key: "http_pool_size", keyPath: \.httpPoolSize, minimum: 1),
            .init(key: "http_per_host_limit", keyPath: \.httpPerHostLimit, minimum: 1),
            .init(key: "http_threads", keyPath: \.httpThreads, minimum: 1),
            .init(key: "fetch_batch_size", keyPath: \.fetchBatchSize, minimum: 1),
            .init(key: "fetch_interval_ms", keyPath: \.fetchIntervalMilliseconds, minimum: 1),
            .init(key: "lease_seconds", keyPath: \.leaseSeconds, minimum: 1),
            .init(key: "shutdown_grace_seconds", keyPath: \.shutdownGraceSeconds, minimum: 0),
            .init(key: "stats_log_interval_seconds", keyPath: \.statsLogIntervalSeconds, minimum: 1),
            .init(key: "max_response_bytes", keyPath: \.maxResponseBytes, minimum: 0),
            .init(key: "stored_response_bytes", keyPath: \.storedResponseBytes, minimum: 0),
            .init(key: "recorder_flush_size", keyPath: \.recorderFlushSize, minimum: 1),
            .init(key: "recorder_flush_interval_ms", keyPath: \.recorderFlushIntervalMilliseconds, minimum: 1),
            .init(key: "max_retry_after_seconds", keyPath: \.maxRetryAfterSeconds, minimum: 0),
            .init(key: "citus_poll_interval_ms", keyPath: \.citusPollIntervalMilliseconds, minimum: 1),
            .init(key: "citus_node_watch_seconds", keyPath: \.citusNodeWatchSeconds, minimum: 1),
        ]
    }
}

extension StatsSettings {
    static var stringSettings: [StringSetting<StatsSettings>] {
        [
            .init(key: "listen", keyPath: \.listen),
            .init(key: "bearer_token_env", keyPath: \.bearerTokenEnv),
        ]
    }
}

extension DatabaseSettings {
    static var stringSettings: [StringSetting<DatabaseSettings>] {
        [.init(key: "url", keyPath: \.url)]
    }
}

/// Scheduled cleanup of finished events (`retention:`); off unless `delivered_after` is set.
public struct RetentionSettings: Sendable, Equatable {
    /// Delete delivered events this long after they finished; nil keeps them.
    public var deliveredAfterSeconds: Int?
    /// Delete failed events this long after they failed; nil keeps them.
    public var failedAfterSeconds: Int?
    /// How often the worker runs the cleanup.
    public var intervalSeconds = 3600

    public init() {}

    public var isEnabled: Bool { deliveredAfterSeconds != nil || failedAfterSeconds != nil }

    static let keys = ["delivered_after", "failed_after", "interval"]
}
