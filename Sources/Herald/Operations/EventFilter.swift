import Foundation

/// Which events an operator means: the console's list and its bulk redelivery, and the
/// CLI's bulk redelivery, all select through this one type, so "what the list shows" and
/// "what redeliver-all touches" cannot drift apart.
public struct EventFilter: Sendable, Equatable {
    public static let statuses = ["pending", "delivered", "failed"]

    public var trigger: String?
    public var status: String?
    /// Created within this many seconds.
    public var sinceSeconds: Int?
    /// An event id (payload UUID or number), a primary-key value, or a JSON object the
    /// stored payload must contain (`payload @> …`).
    public var query: String?

    public init(trigger: String? = nil, status: String? = nil, sinceSeconds: Int? = nil, query: String? = nil) {
        self.trigger = trigger
        self.status = status
        self.sinceSeconds = sinceSeconds
        self.query = query
    }

    /// A filter that cannot be run, said in the words of the field at fault.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public var field: String
        public var message: String
        public var description: String { "\(field): \(message)" }
    }

    /// How `query` is read.
    enum Query: Equatable {
        /// `{…}`: the stored payload (Hasura's `event` object) must contain it.
        case containment(String)
        /// A number or other text: the event number (when numeric) or any primary-key column
        /// of the row, old or new.
        case key(String)
        /// A payload UUID of this installation.
        case event(Int64)
        /// Any other UUID: an id kept from before (an event moved from Hasura, or captured
        /// before ids looked random), or nothing.
        case importedID(String)
    }

    func parsedQuery(key: EventIDKey) throws(Invalid) -> Query? {
        guard let text = query?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { return nil }
        if text.hasPrefix("{") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw Invalid(field: "q", message: "not a JSON object; a containment filter looks like {\"data\":{\"new\":{\"id\":42}}}")
            }
            // People copy filters from what their receiver saw: accept the delivered
            // envelope's {"event": …} around the stored object.
            if object.count == 1, let inner = object["event"] as? [String: Any],
                let data = try? JSONSerialization.data(withJSONObject: inner)
            {
                return .containment(String(decoding: data, as: UTF8.self))
            }
            return .containment(text)
        }
        if let uuid = UUID(uuidString: text) {
            return EventID.number(from: text, key: key).map(Query.event) ?? .importedID(uuid.uuidString.lowercased())
        }
        return .key(text)
    }

    /// The WHERE conditions (joined by AND) over `herald.event_log`, with their parameters
    /// numbered from `firstParameter`. `keyColumns` are the primary-key column names of the
    /// configured tables, for a key-value `q`.
    func conditions(key: EventIDKey, keyColumns: [String], firstParameter: Int = 1) throws(Invalid)
        -> (sql: [String], parameters: [String?])
    {
        var sql: [String] = []
        var parameters: [String?] = []
        func bind(_ value: String) -> String {
            parameters.append(value)
            return "$\(firstParameter + parameters.count - 1)"
        }
        if let trigger, !trigger.isEmpty { sql.append("trigger_name = \(bind(trigger))") }
        if let status, !status.isEmpty {
            guard Self.statuses.contains(status) else {
                throw Invalid(field: "status", message: "must be pending, delivered or failed")
            }
            sql.append("status = \(bind(status))")
        }
        if let sinceSeconds {
            sql.append("created_at >= now() - make_interval(secs => \(bind(String(sinceSeconds)))::int)")
        }
        switch try parsedQuery(key: key) {
        case nil: break
        case .importedID(let uuid)?: sql.append("imported_id = \(bind(uuid))::uuid")
        case .event(let number)?: sql.append("id = \(bind(String(number)))::bigint")
        case .containment(let json)?:
            sql.append(Self.contains(bind(json)))
        case .key(let text)?:
            var alternatives: [String] = []
            if let number = Int64(text), number > 0 { alternatives.append("id = \(bind(String(number)))::bigint") }
            for json in Self.keyContainments(text, keyColumns: keyColumns) {
                alternatives.append(Self.contains(bind(json)))
            }
            sql.append(alternatives.isEmpty ? "false" : "(" + alternatives.joined(separator: " OR ") + ")")
        }
        return (sql, parameters)
    }

    /// `payload @> parameter`, in a form every arm of which an index serves: the GIN index
    /// on payload holds finished events only (schema version 13), so pending ones are read
    /// through the two pending partial indexes (the backlog) and rechecked. Without the
    /// split the planner would read the whole log.
    static func contains(_ parameter: String) -> String {
        let test = "payload @> \(parameter)::jsonb"
        return "((status <> 'pending' AND \(test)) OR (status = 'pending' AND ordering_key IS NULL AND \(test))"
            + " OR (status = 'pending' AND ordering_key IS NOT NULL AND \(test)))"
    }

    /// `{"data":{"new":{"<column>":<value>}}}` and the same for `old`, for every key column,
    /// with the value as a JSON string and, when it reads as one, a JSON number: a key typed
    /// into a search box has no type.
    static func keyContainments(_ text: String, keyColumns: [String]) -> [String] {
        var values = [DeliveryRequest.json(text)]
        if let number = Int64(text) { values.append(String(number)) }
        var result: [String] = []
        for column in keyColumns {
            for value in values {
                for side in ["new", "old"] {
                    result.append("{\"data\":{\"\(side)\":{\(DeliveryRequest.json(column)):\(value)}}}")
                }
            }
        }
        return result
    }
}
