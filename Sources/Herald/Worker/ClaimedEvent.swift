/// An event the claimer leased, with what delivery needs. `payload` is the stored Hasura
/// `event` object as JSON text, passed through untouched.
///
/// A value whose fields live in one immutable box: an event is copied into its job, its
/// request and its outcome and passes through three threads, and a copy of the box is one
/// retain where the fields themselves were seven (the strings). Setting a field makes a new
/// box, so copies never see each other's changes; the hot path sets none after the claim.
public struct ClaimedEvent: Sendable, Equatable {
    private struct Fields: Sendable, Equatable {
        var id: Int64
        var triggerName: String
        var table: TableName
        var payload: String
        var tries: Int
        var createdAt: String
        var createdAtEpoch: Double
        var leaseToken: Int64
        var importedID: String?
        var orderingKey: String?
        var source: String
        var attemptedBefore: Bool
    }

    private final class Box: Sendable {
        let fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var box: Box

    private mutating func set<Value>(_ field: WritableKeyPath<Fields, Value>, _ value: Value) {
        var fields = box.fields
        fields[keyPath: field] = value
        box = Box(fields)
    }

    // Read-only but for the three fields code sets after a claim (a preview's id, a
    // redisplayed event's tries, a test's source).
    public var id: Int64 { box.fields.id }
    public var triggerName: String { box.fields.triggerName }
    public var table: TableName { box.fields.table }
    public var payload: String { box.fields.payload }
    /// Attempts made before this one.
    public var tries: Int {
        get { box.fields.tries }
        set { set(\.tries, newValue) }
    }
    /// RFC 3339 in UTC with microseconds, as PostgreSQL formatted it.
    public var createdAt: String { box.fields.createdAt }
    /// Unix time of creation, for end-to-end latency.
    public var createdAtEpoch: Double { box.fields.createdAtEpoch }
    /// The claim's `locked_at` in microseconds since the epoch: outcomes carry it so that
    /// only the lease they answer is updated.
    public var leaseToken: Int64 { box.fields.leaseToken }
    /// The payload id fixed before the event reached Herald's id derivation: Hasura's UUID
    /// for an event moved by `migrate-from-hasura`, or the id an event captured before schema
    /// version 6 was already sent with.
    public var importedID: String? {
        get { box.fields.importedID }
        set { set(\.importedID, newValue) }
    }
    /// The event's key when its trigger delivers in order per key (a JSON array of the key
    /// columns' values); nil otherwise.
    public var orderingKey: String? { box.fields.orderingKey }
    /// The source (database) the event was claimed from: its outcome is written there.
    public var source: String {
        get { box.fields.source }
        set { set(\.source, newValue) }
    }
    /// True when an attempt of this event failed before, even if a redelivery reset its
    /// tries: a redelivered scheduled event is sent whatever its tolerance.
    public var attemptedBefore: Bool { box.fields.attemptedBefore }

    public init(
        id: Int64, triggerName: String, table: TableName, payload: String, tries: Int, createdAt: String,
        createdAtEpoch: Double, leaseToken: Int64 = 0, importedID: String? = nil, orderingKey: String? = nil,
        source: String = SourceConfig.defaultName, attemptedBefore: Bool = false
    ) {
        box = Box(
            Fields(
                id: id, triggerName: triggerName, table: table, payload: payload, tries: tries, createdAt: createdAt,
                createdAtEpoch: createdAtEpoch, leaseToken: leaseToken, importedID: importedID,
                orderingKey: orderingKey, source: source, attemptedBefore: attemptedBefore))
    }

    public static func == (lhs: ClaimedEvent, rhs: ClaimedEvent) -> Bool {
        lhs.box === rhs.box || lhs.box.fields == rhs.box.fields
    }
}
