import Algorithms

/// Where each trigger's next claim starts walking its keys (ordered triggers): after the
/// last key it claimed, so successive claims go round all keys instead of serving the
/// first ones again while later keys wait. Pure; the claimer owns one.
struct KeyCursors {
    private var after: [String: String] = [:]

    /// The key each trigger's walk starts after ("" for the first key).
    var starts: [String: String] { after }

    /// Moves the cursors past a claim's keys and returns the counts flow control should
    /// treat as asked for. A walk that started mid-way and came back short may have missed
    /// due heads before its start: it restarts from the first key, and the trigger is
    /// reported as fully served so that flow control looks again at once rather than
    /// waiting for the next notification or poll.
    mutating func advance(asked: [String: Int], claimed: [ClaimedEvent]) -> [String: Int] {
        var counts: [String: Int] = [:]
        var lastKey: [String: String] = [:]
        // Claimed events come in runs of one trigger: one count and key update per run.
        for (trigger, run) in claimed.chunked(on: \.triggerName) {
            counts[trigger, default: 0] += run.count
            if let highest = run.lazy.compactMap(\.orderingKey).max(), highest > lastKey[trigger] ?? "" {
                lastKey[trigger] = highest
            }
        }
        var reported = asked
        for (trigger, limit) in asked {
            let count = counts[trigger, default: 0]
            if count < limit, let start = after[trigger], !start.isEmpty {
                after[trigger] = nil
                reported[trigger] = count
            } else if let key = lastKey[trigger] {
                after[trigger] = key
            }
        }
        return reported
    }
}
