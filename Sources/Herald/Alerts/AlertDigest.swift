import Foundation

/// An alert waiting to be sent, stamped with the wall time it happened.
struct PendingAlert: Sendable, Equatable {
    var alert: Alert
    var occurredAt: Date
}

/// Keeps a dead endpoint from flooding the alert receiver: per alert type, the first
/// `individualLimit` alerts of a `digest_interval_sec` window go out one by one, the rest are
/// folded into one `herald.digest` alert taken when the window ends. Pure: the caller passes
/// the time, so every rule is a unit test.
///
/// A window starts with the first alert of its type. A window that ended while its digest could
/// not be queued yet (the send queue was full) keeps folding until it is taken, so a count is
/// never lost and memory stays bounded by the number of alert types.
struct AlertDigest {
    struct Window: Equatable {
        var start: ContinuousClock.Instant
        var sent = 0
        var folded = 0
        var firstKeys: [String] = []
        var triggers: [String] = []
        var firstAt: Date?
        var lastAt: Date?
    }

    enum Decision: Equatable { case send, fold }

    let intervalSeconds: Int
    let individualLimit: Int
    /// How many ids (and distinct triggers) a digest lists.
    let keyLimit: Int
    private(set) var windows: [String: Window] = [:]

    init(intervalSeconds: Int, individualLimit: Int = 5, keyLimit: Int = 10) {
        self.intervalSeconds = intervalSeconds
        self.individualLimit = individualLimit
        self.keyLimit = keyLimit
    }

    var interval: Duration { .seconds(intervalSeconds) }

    /// Counts `pending` in its type's window and says whether it goes out on its own.
    mutating func admit(_ pending: PendingAlert, now: ContinuousClock.Instant) -> Decision {
        let (individualLimit, keyLimit) = (self.individualLimit, self.keyLimit)
        return withWindow(pending.alert.type, now: now) { window in
            if window.sent < individualLimit {
                window.sent += 1
                return .send
            }
            Self.add(pending, to: &window, keyLimit: keyLimit)
            return .fold
        }
    }

    /// Folds `pending` whatever the count: it was admitted but the send queue had no room.
    mutating func fold(_ pending: PendingAlert, now: ContinuousClock.Instant) {
        let keyLimit = self.keyLimit
        withWindow(pending.alert.type, now: now) { Self.add(pending, to: &$0, keyLimit: keyLimit) }
    }

    /// When the earliest digest falls due, if any alert is folded.
    var nextDue: ContinuousClock.Instant? {
        windows.values.filter { $0.folded > 0 }.map { $0.start + interval }.min()
    }

    /// Ends the windows that are over: up to `limit` digests of those that folded anything,
    /// oldest window first. Windows with nothing folded are forgotten.
    mutating func takeDue(now: ContinuousClock.Instant, limit: Int = .max) -> [PendingAlert] {
        let over = windows.filter { now >= $0.value.start + interval }
        for (type, window) in over where window.folded == 0 { windows[type] = nil }
        let due = over.filter { $0.value.folded > 0 }
            .sorted { ($0.value.start, $0.key) < ($1.value.start, $1.key) }
            .prefix(max(limit, 0))
        return due.map { type, window in
            windows[type] = nil
            return digest(type: type, window)
        }
    }

    /// Every digest now, window over or not (at shutdown).
    mutating func takeAll() -> [PendingAlert] {
        let all = windows.filter { $0.value.folded > 0 }.sorted { ($0.value.start, $0.key) < ($1.value.start, $1.key) }
        windows.removeAll()
        return all.map { digest(type: $0.key, $0.value) }
    }

    /// Runs `body` on the type's current window, in place (no copy of its lists per alert):
    /// the open one, or a new one from `now`.
    private mutating func withWindow<Result>(
        _ type: String, now: ContinuousClock.Instant, _ body: (inout Window) -> Result
    ) -> Result {
        if let window = windows[type], now >= window.start + interval, window.folded == 0 { windows[type] = nil }
        return body(&windows[type, default: Window(start: now)])
    }

    private static func add(_ pending: PendingAlert, to window: inout Window, keyLimit: Int) {
        window.folded += 1
        if window.firstKeys.count < keyLimit, let key = pending.alert.digestKey { window.firstKeys.append(key) }
        if window.triggers.count < keyLimit, let trigger = pending.alert.trigger, !window.triggers.contains(trigger) {
            window.triggers.append(trigger)
        }
        window.firstAt = window.firstAt ?? pending.occurredAt
        window.lastAt = pending.occurredAt
    }

    /// `herald.digest`: how many alerts of `type` were folded, the first ids, and when.
    private func digest(type: String, _ window: Window) -> PendingAlert {
        let lastAt = window.lastAt ?? Date()
        let format = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        return PendingAlert(
            alert: Alert(
                type: Alert.digestType,
                data: [
                    "alert_type": .string(type), "count": .int(window.folded), "first_ids": .strings(window.firstKeys),
                    "triggers": .strings(window.triggers), "interval_sec": .int(intervalSeconds),
                    "first_at": .string(format.format(window.firstAt ?? lastAt)), "last_at": .string(format.format(lastAt)),
                ]),
            occurredAt: lastAt)
    }
}

/// What ``AlertDispatcher`` shares between `emit` and its sending thread: the digest and a
/// bounded queue of alerts to send. Pure, like the digest.
struct AlertInbox {
    enum Admission: Equatable {
        /// Queued to go out on its own.
        case queued
        /// Folded into its type's next digest.
        case folded
        /// Folded too, because the queue was full.
        case overflowed
    }

    private(set) var digest: AlertDigest
    let capacity: Int
    private var queue: [PendingAlert] = []

    init(digest: AlertDigest, capacity: Int) {
        self.digest = digest
        self.capacity = capacity
    }

    var count: Int { queue.count }

    mutating func offer(_ pending: PendingAlert, now: ContinuousClock.Instant) -> Admission {
        guard digest.admit(pending, now: now) == .send else { return .folded }
        guard queue.count < capacity else {
            digest.fold(pending, now: now)
            return .overflowed
        }
        queue.append(pending)
        return .queued
    }

    /// The next alert to send: queued ones in order, digests queued behind them as their
    /// windows end and room allows.
    mutating func next(now: ContinuousClock.Instant) -> PendingAlert? {
        queue += digest.takeDue(now: now, limit: capacity - queue.count)
        return queue.isEmpty ? nil : queue.removeFirst()
    }

    /// Everything left, digests included, in sending order (at shutdown).
    mutating func drain() -> [PendingAlert] {
        defer { queue.removeAll() }
        return queue + digest.takeAll()
    }

    var nextDigestDue: ContinuousClock.Instant? { digest.nextDue }
}
