import Foundation

/// `application/x-www-form-urlencoded`, for query strings and POSTed forms alike.
enum FormCoding {
    static func decode(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decodeComponent(parts[0])
            let value = parts.count > 1 ? decodeComponent(parts[1]) : ""
            // The first wins: a second `status=` appended to a link cannot override the first.
            if fields[name] == nil { fields[name] = value }
        }
        return fields
    }

    static func encode(_ fields: [(String, String)]) -> String {
        fields.filter { !$0.1.isEmpty }.map { "\(encodeComponent($0.0))=\(encodeComponent($0.1))" }
            .joined(separator: "&")
    }

    private static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    static func encodeComponent(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    private static func decodeComponent(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}

/// The events list's filter as typed in the form and carried in URLs
/// (`/console/events?trigger=…&status=…&since=…&q=…`).
struct FilterForm: Sendable, Equatable {
    var trigger = ""
    var status = ""
    var since = ""
    var q = ""
    /// On a Citus coordinator, the worker node whose log is browsed (its source name); empty
    /// for the coordinator's own.
    var node = ""

    init(trigger: String = "", status: String = "", since: String = "", q: String = "", node: String = "") {
        self.trigger = trigger
        self.status = status
        self.since = since
        self.q = q
        self.node = node
    }

    init(fields: [String: String]) {
        trigger = fields["trigger"] ?? ""
        status = fields["status"] ?? ""
        since = fields["since"] ?? ""
        q = fields["q"] ?? ""
        node = fields["node"] ?? ""
    }

    var isEmpty: Bool { trigger.isEmpty && status.isEmpty && since.isEmpty && q.isEmpty }

    var fields: [(String, String)] { [("trigger", trigger), ("status", status), ("since", since), ("q", q), ("node", node)] }

    var query: String { FormCoding.encode(fields) }

    func filter() throws(EventFilter.Invalid) -> EventFilter {
        var seconds: Int?
        if !since.isEmpty {
            guard let value = DurationText.seconds(since) else {
                throw EventFilter.Invalid(field: "since", message: "'\(since)' is not a duration such as 90m, 24h or 7d")
            }
            seconds = value
        }
        if !status.isEmpty, !EventFilter.statuses.contains(status) {
            throw EventFilter.Invalid(field: "status", message: "must be pending, delivered or failed")
        }
        return EventFilter(
            trigger: trigger.isEmpty ? nil : trigger, status: status.isEmpty ? nil : status, sinceSeconds: seconds,
            query: q.isEmpty ? nil : q)
    }
}
