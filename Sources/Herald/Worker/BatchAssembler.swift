/// Groups a batched trigger's claimed events into requests: a batch goes out when it holds
/// `max_events`, when the next event would take its body past `max_bytes`, or when its
/// oldest event was captured `max_wait_ms` ago. Until then its events stay leased to this
/// worker, so no other worker sends them; a batch never waits past `sendBy` (half the
/// time its lease leaves for sending), so its events cannot be dropped for a lapsed lease.
///
/// Pure: every call takes the time it needs. One assembler per claimer (source).
struct BatchAssembler<Event> {
    struct Entry {
        var event: Event
        /// The payload as it would be sent alone.
        var payload: [UInt8]
        /// When the event was captured (Unix seconds).
        var createdAtEpoch: Double
        /// The latest time a batch holding this event may still be handed to delivery.
        var sendBy: ContinuousClock.Instant
    }

    /// The bytes a batch body adds around its payloads: `{"events":[` … `]}`.
    static var envelopeBytes: Int { 13 }

    private struct Open {
        var entries: [Entry] = []
        var bytes = BatchAssembler.envelopeBytes
        var deadline: ContinuousClock.Instant?
    }

    private var open: [String: Open] = [:]

    /// Events held, in all open batches.
    var heldCount: Int { open.values.reduce(0) { $0 + $1.entries.count } }

    /// Adds claimed events of `trigger` (in claim order) and returns the batches that are
    /// ready: full ones at once, and the open batch too when its time has come.
    mutating func add(
        _ entries: [Entry], trigger: String, config: BatchConfig, now: ContinuousClock.Instant, wallNow: Double
    ) -> [[Entry]] {
        var ready: [[Entry]] = []
        var batch = open.removeValue(forKey: trigger) ?? Open()
        for entry in entries {
            let added = entry.payload.count + (batch.entries.isEmpty ? 0 : 1)
            if !batch.entries.isEmpty, batch.bytes + added > config.maxBytes {
                ready.append(batch.entries)
                batch = Open()
            }
            batch.bytes += entry.payload.count + (batch.entries.isEmpty ? 0 : 1)
            batch.entries.append(entry)
            let waited = now + .milliseconds(Int64(((entry.createdAtEpoch - wallNow) * 1000).rounded(.up)))
                + .milliseconds(config.maxWaitMilliseconds)
            let due = min(waited, entry.sendBy)
            batch.deadline = min(batch.deadline ?? due, due)
            if batch.entries.count >= config.maxEvents {
                ready.append(batch.entries)
                batch = Open()
            }
        }
        if let deadline = batch.deadline, deadline <= now {
            ready.append(batch.entries)
        } else if !batch.entries.isEmpty {
            open[trigger] = batch
        }
        return ready
    }

    /// The open batches whose time has come, by trigger.
    mutating func takeDue(now: ContinuousClock.Instant) -> [(trigger: String, entries: [Entry])] {
        let due = open.filter { ($0.value.deadline ?? now) <= now }.keys.sorted()
        return due.compactMap { trigger in open.removeValue(forKey: trigger).map { (trigger, $0.entries) } }
    }

    /// Every open batch, for a worker that stops.
    mutating func takeAll() -> [(trigger: String, entries: [Entry])] {
        defer { open.removeAll() }
        return open.keys.sorted().compactMap { trigger in open[trigger].map { (trigger, $0.entries) } }
    }

    /// When the next open batch is due; nil when none is open.
    var nextDeadline: ContinuousClock.Instant? { open.values.compactMap(\.deadline).min() }
}
