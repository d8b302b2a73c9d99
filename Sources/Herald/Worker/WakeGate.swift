/// Whether a claimer asks writers to NOTIFY it (sql/017_wake_gate.sql).
///
/// NOTIFY serialises every notifying commit of the database through one lock, so writers
/// send it only while a claimer may sleep until woken. Armed, the claimer holds the gate's
/// lock slots and every capturing transaction notifies it at commit. Disarmed, writers send
/// nothing, so the claimer must not sleep on a timer, and every ``lookInterval`` it looks at
/// every trigger (as a NOTIFY would make it), so a quiet trigger's new events are found while
/// another's backlog lasts. Before a timed wait it arms, then claims once more (an arm
/// succeeds only once every transaction that did not notify has committed, so that claim
/// sees their events).
///
/// It disarms when a claim comes back full (a backlog: it claims again as soon as there is
/// room, and room frees as deliveries end, not as writers commit). Waiting for room keeps
/// it disarmed: the wake-up when room frees is followed by a claim for every trigger.
///
/// The decisions only; the claimer runs the SQL and reports back. Pure, no clock of its own.
struct WakeGate: Sendable, Equatable {
    enum Phase: Sendable, Equatable {
        /// Holds no slot: writers do not notify.
        case disarmed
        /// Holds every slot: writers notify at commit.
        case armed
    }

    /// What the claimer does now.
    enum Action: Sendable, Equatable {
        case none
        /// Take every slot (`herald.wake_gate_arm()`), then report with ``armed(_:now:)``.
        case arm
        /// Release every slot (`herald.wake_gate_disarm()`), then report with ``disarmed()``.
        case disarm
    }

    /// The first retry of a refused arm, and the longest wait between retries. A refusal
    /// means a writer's commit is in progress, which takes milliseconds; a prepared
    /// (two-phase) transaction may hold its slot longer, and the claimer keeps looking.
    static let firstRetry: Duration = .milliseconds(1)
    static let longestRetry: Duration = .milliseconds(100)
    /// While disarmed, how often a turn looks at every trigger. Not every turn: a claim is
    /// shared among the triggers it asks for, so asking an idle one each time halves a busy
    /// one's claims (measured: 44 events per claim of 100 in a one-trigger drain).
    static let lookInterval: Duration = .milliseconds(25)

    /// How a claimer learns of new events.
    enum Mode: Sendable, Equatable {
        /// Writers NOTIFY while the gate is armed (the database's own log).
        case notified
        /// Writers never notify (a Citus worker node's log, whose writers may commit with
        /// two-phase commit): the gate is never armed, and the claimer looks at every
        /// trigger once per interval.
        case polling(every: Duration)
    }

    let mode: Mode

    init(mode: Mode = .notified) {
        self.mode = mode
    }

    /// How often a disarmed claimer looks at every trigger.
    private var lookInterval: Duration {
        switch mode {
        case .notified: Self.lookInterval
        case .polling(let every): every
        }
    }

    /// A new claimer holds no slot and claims first, as if notified.
    private(set) var phase: Phase = .disarmed
    /// Armed, but the last claim came back full: release the slots at the next turn.
    private var disarmWanted = false
    /// Armed just now: the next turn claims once as if notified.
    private var claimAfterArm = false
    /// The last step was a claim in which no trigger got all it asked for.
    private var claimedShort = false
    /// When a turn last looked at every trigger.
    private var lastLook: ContinuousClock.Instant?
    private var refusedArms = 0
    /// When a refused arm may be tried again.
    private(set) var nextArm: ContinuousClock.Instant?

    /// A new connection holds no slot, and may have missed anything: it claims first.
    mutating func connected() {
        self = WakeGate(mode: mode)
    }

    /// After a claim: `backlog` is true when some trigger got all it asked for.
    mutating func claimed(backlog: Bool) {
        claimedShort = !backlog
        if phase == .armed { disarmWanted = backlog }
    }

    /// What to do at the start of a turn: release the slots after a full claim, or take them
    /// at once when another listener has appeared. `mayDisarm` is false while something else
    /// listens for the same notifications (pull consumers, stream clients): then the claimer
    /// stays armed.
    func atTurn(mayDisarm: Bool, now: ContinuousClock.Instant) -> Action {
        switch phase {
        case .armed: return disarmWanted && mayDisarm ? .disarm : .none
        case .disarmed: return mayDisarm ? .none : armIfDue(now)
        }
    }

    /// What to do before a wait. `untilWoken`: the claimer waits for room, which a wake-up
    /// reports; any other wait ends on a timer, and writers must be able to cut it short.
    func beforeWait(untilWoken: Bool, now: ContinuousClock.Instant) -> Action {
        phase == .disarmed && !untilWoken ? armIfDue(now) : .none
    }

    private func armIfDue(_ now: ContinuousClock.Instant) -> Action {
        guard mode == .notified else { return .none }
        guard let nextArm else { return .arm }
        return now >= nextArm ? .arm : .none
    }

    /// The arm's result: taken, the next turn claims once as if notified; refused, it is
    /// tried again after a backoff (the claimer's wait ends by ``wakeBy``).
    mutating func armed(_ taken: Bool, now: ContinuousClock.Instant) {
        guard taken else {
            refusedArms += 1
            let exponent = min(refusedArms - 1, 10)
            nextArm = now + min(Self.firstRetry * (1 << exponent), Self.longestRetry)
            return
        }
        phase = .armed
        refusedArms = 0
        nextArm = nil
        claimAfterArm = true
        disarmWanted = false
    }

    /// Releasing the slots failed (the claimer logged why): it keeps them, so writers go on
    /// notifying, and tries again after the next full claim.
    mutating func disarmFailed() {
        disarmWanted = false
    }

    /// The slots are released.
    mutating func disarmed() {
        phase = .disarmed
        disarmWanted = false
    }

    /// Whether this turn must look at every trigger as a NOTIFY would make it: once right
    /// after an arm, and while disarmed (writers are silent) every ``lookInterval``, but
    /// never right after a claim that found nothing more: that turn must be free to wait
    /// (and so to arm).
    mutating func takeActAsNotified(now: ContinuousClock.Instant) -> Bool {
        defer {
            claimAfterArm = false
            claimedShort = false
        }
        let look: Bool
        if claimAfterArm {
            look = true
        } else if phase == .disarmed && !claimedShort {
            look = lastLook.map { now - $0 >= lookInterval } ?? true
        } else {
            look = false
        }
        if look { lastLook = now }
        return look
    }

    /// When a disarmed claimer's wait must end at the latest: to look at every trigger (a
    /// wait for room on one host must not hide another trigger's new events, which no writer
    /// announces), and, before a timed wait, to retry a refused arm. A wait for room tries
    /// no arm, so a past retry time must not end it at once.
    func wakeBy(untilWoken: Bool) -> ContinuousClock.Instant? {
        guard phase == .disarmed else { return nil }
        let nextLook = lastLook.map { $0 + lookInterval }
        return [untilWoken ? nil : nextArm, nextLook].compactMap { $0 }.min()
    }
}
