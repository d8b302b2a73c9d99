/// A PostgreSQL snapshot (`pg_snapshot`): transactions below `xmin` had ended when it was
/// taken, those from `xmax` on had not begun, and `inProgress` lists the ones between that
/// were still running. A transaction's rows are visible in it exactly when the transaction
/// had committed by then.
struct StreamSnapshot: Equatable, Sendable {
    var xmin: UInt64
    var xmax: UInt64
    var inProgress: [UInt64]

    /// PostgreSQL's text form, `xmin:xmax:xip,xip`.
    init?(postgres text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, let xmin = UInt64(parts[0]), let xmax = UInt64(parts[1]) else { return nil }
        var inProgress: [UInt64] = []
        for item in parts[2].split(separator: ",") {
            guard let xid = UInt64(item) else { return nil }
            inProgress.append(xid)
        }
        self.init(xmin: xmin, xmax: xmax, inProgress: inProgress)
    }

    init(xmin: UInt64, xmax: UInt64, inProgress: [UInt64]) {
        self.xmin = xmin
        self.xmax = xmax
        self.inProgress = inProgress.sorted()
    }

    var postgres: String { "\(xmin):\(xmax):" + inProgress.map(String.init).joined(separator: ",") }

    /// PostgreSQL's `pg_visible_in_snapshot` for a committed transaction.
    func sees(_ xid: UInt64) -> Bool { xid < xmin || (xid < xmax && !inProgress.contains(xid)) }

    /// The oldest transaction whose events it has not seen.
    var oldestUnseen: UInt64 { inProgress.first.map { min($0, xmax) } ?? xmax }

    /// Whether every transaction `self` saw, `other` saw too (`other` was taken later).
    func isCovered(by other: StreamSnapshot) -> Bool {
        other.xmax >= xmax && other.inProgress.allSatisfy { !sees($0) }
    }
}

/// Where a stream client is: every event of a transaction visible in `served` has been sent;
/// with a `window`, also the events of transactions visible in `window.upTo` (but not in
/// `served`) up to and including `window.last`, in (transaction, id) order.
///
/// So the events after a cursor are exactly those of transactions a snapshot had not seen
/// when it was taken, wherever their ids fall: an event committed after a later-numbered one
/// is still ahead of a client that has passed that number. Windows follow one another (each
/// `upTo` becomes the next `served`), so the stream is in commit order as far as snapshots
/// tell commits apart: a transaction that committed before a snapshot was taken comes before
/// every one that had not; transactions that committed between the same two snapshots come
/// in transaction-id order; a transaction's events come together, in id order.
///
/// The text form (the SSE `id:` and the `after` parameter) uses only URL-safe characters:
/// `1_XMIN.XMAX.XIP-XIP` for `served`, then `_XMIN.XMAX.XIP-XIP` for the window and
/// `_XID.ID` for its last event.
struct StreamCursor: Equatable, Sendable {
    struct Position: Equatable, Comparable, Sendable {
        var xid: UInt64
        var id: Int64
        static func < (a: Position, b: Position) -> Bool { (a.xid, a.id) < (b.xid, b.id) }
    }

    struct Window: Equatable, Sendable {
        var upTo: StreamSnapshot
        var last: Position
    }

    var served: StreamSnapshot
    var window: Window?

    /// Before any event (every transaction is unseen).
    static let origin = StreamCursor(served: StreamSnapshot(xmin: 0, xmax: 0, inProgress: []))

    /// Just after `horizon`, the newest transaction whose events were deleted: the oldest
    /// cursor that misses nothing still in the log.
    static func after(horizon: UInt64) -> StreamCursor {
        StreamCursor(served: StreamSnapshot(xmin: horizon + 1, xmax: horizon + 1, inProgress: []))
    }

    /// The oldest transaction with events not yet served.
    var oldestUnserved: UInt64 {
        guard let window else { return served.oldestUnseen }
        return min(window.last.xid, window.upTo.oldestUnseen)
    }

    /// Whether events of `horizon` (and older transactions) may have been deleted before this
    /// cursor served them.
    func hasLost(horizon: UInt64?) -> Bool {
        guard let horizon else { return false }
        return oldestUnserved <= horizon
    }

    // MARK: Text

    static let version = "1"

    var text: String {
        var text = Self.version + "_" + Self.text(served)
        if let window {
            text += "_" + Self.text(window.upTo) + "_\(window.last.xid).\(window.last.id)"
        }
        return text
    }

    private static func text(_ snapshot: StreamSnapshot) -> String {
        "\(snapshot.xmin).\(snapshot.xmax)"
            + (snapshot.inProgress.isEmpty ? "" : "." + snapshot.inProgress.map(String.init).joined(separator: "-"))
    }

    /// Parses the text form; nil when it is not one this version wrote (or is inconsistent:
    /// a window must be a later snapshot than `served`, and its last event one `served` had
    /// not seen and `upTo` had).
    init?(text: String) {
        let parts = text.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.first == Substring(Self.version), parts.count == 2 || parts.count == 4,
            let served = Self.snapshot(parts[1])
        else { return nil }
        self.served = served
        guard parts.count == 4 else { return }
        let position = parts[3].split(separator: ".", omittingEmptySubsequences: false)
        guard let upTo = Self.snapshot(parts[2]), position.count == 2,
            let xid = UInt64(position[0]), let id = Int64(position[1]),
            served.isCovered(by: upTo), !served.sees(xid), upTo.sees(xid)
        else { return nil }
        window = Window(upTo: upTo, last: Position(xid: xid, id: id))
    }

    init(served: StreamSnapshot, window: Window? = nil) {
        self.served = served
        self.window = window
    }

    private static func snapshot(_ text: Substring) -> StreamSnapshot? {
        let fields = text.split(separator: ".", omittingEmptySubsequences: false)
        guard fields.count == 2 || fields.count == 3, let xmin = UInt64(fields[0]), let xmax = UInt64(fields[1]),
            xmin <= xmax
        else { return nil }
        var inProgress: [UInt64] = []
        if fields.count == 3 {
            for item in fields[2].split(separator: "-", omittingEmptySubsequences: false) {
                guard let xid = UInt64(item), xid >= xmin, xid < xmax else { return nil }
                inProgress.append(xid)
            }
            // PostgreSQL's snapshots hold at most max_connections-odd entries; a cursor with
            // thousands is not one Herald wrote.
            guard !inProgress.isEmpty, inProgress.count <= 10_000 else { return nil }
        }
        return StreamSnapshot(xmin: xmin, xmax: xmax, inProgress: inProgress)
    }
}

/// How one read of a stream moves its cursor, without I/O: a read either continues an open
/// window (events visible in its `upTo`, after its last position) or opens the next one at
/// the database's current snapshot. ``advance(from:page:limit:)`` gives each event the cursor
/// just after it and the cursor after the whole read.
enum StreamPaging {
    struct Page: Equatable {
        /// The snapshot read in: the window's `upTo`, or the current one that opened it.
        var snapshot: StreamSnapshot
        /// The events' positions, in order.
        var positions: [StreamCursor.Position]
    }

    struct Advance: Equatable {
        /// The cursor after each event.
        var cursors: [StreamCursor]
        /// Where the next read starts.
        var next: StreamCursor
        /// Whether the window is exhausted, so the next read opens a new one (it may find
        /// events at once; a read that found none here waits first).
        var windowClosed: Bool
    }

    /// A page that filled `limit` leaves its window open at its last event; a shorter one
    /// closes it, and its last event's cursor is the closed one (`served` = the snapshot),
    /// so a client that resumes there does not read the finished window again.
    static func advance(from cursor: StreamCursor, page: Page, limit: Int) -> Advance {
        let closed = StreamCursor(served: page.snapshot)
        let full = page.positions.count >= limit
        var cursors = page.positions.map {
            StreamCursor(served: cursor.served, window: .init(upTo: page.snapshot, last: $0))
        }
        if !full, !cursors.isEmpty { cursors[cursors.count - 1] = closed }
        let next = full ? (cursors.last ?? closed) : closed
        return Advance(cursors: cursors, next: next, windowClosed: !full)
    }
}
