/// An event the claimer leased, with what delivery needs. `payload` is the stored Hasura
/// `event` object as JSON text, passed through untouched.
public struct ClaimedEvent: Sendable, Equatable {
    public var id: Int64
    public var triggerName: String
    public var table: TableName
    public var payload: String
    /// Attempts made before this one.
    public var tries: Int
    /// RFC 3339 in UTC with microseconds, as PostgreSQL formatted it.
    public var createdAt: String
    /// Unix time of creation, for end-to-end latency.
    public var createdAtEpoch: Double
    /// The claim's `locked_at` in microseconds since the epoch: outcomes carry it so that
    /// only the lease they answer is updated.
    public var leaseToken: Int64
    /// The payload id fixed before the event reached Herald's id derivation: Hasura's UUID
    /// for an event moved by `migrate-from-hasura`, or the id an event captured before schema
    /// version 6 was already sent with.
    public var importedID: String?
    /// The event's key when its trigger delivers in order per key (a JSON array of the key
    /// columns' values); nil otherwise.
    public var orderingKey: String?
    /// The source (database) the event was claimed from: its outcome is written there.
    public var source = SourceConfig.defaultName
    /// True when an attempt of this event failed before, even if a redelivery reset its
    /// tries: a redelivered scheduled event is sent whatever its tolerance.
    public var attemptedBefore = false

    public init(
        id: Int64, triggerName: String, table: TableName, payload: String, tries: Int, createdAt: String,
        createdAtEpoch: Double, leaseToken: Int64 = 0, importedID: String? = nil, orderingKey: String? = nil,
        attemptedBefore: Bool = false
    ) {
        self.attemptedBefore = attemptedBefore
        self.orderingKey = orderingKey
        self.id = id
        self.triggerName = triggerName
        self.table = table
        self.payload = payload
        self.tries = tries
        self.createdAt = createdAt
        self.createdAtEpoch = createdAtEpoch
        self.leaseToken = leaseToken
        self.importedID = importedID
    }
}
