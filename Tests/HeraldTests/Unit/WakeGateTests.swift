import Testing

@testable import Herald

/// The wake gate's decisions: when a claimer asks writers to NOTIFY it, and when it must
/// claim as if notified because they do not.
@Suite("Wake gate")
struct WakeGateTests {
    let t0 = ContinuousClock.now

    /// `takeActAsNotified(now:)` (mutating, so not inside `#expect`); by default a look
    /// interval after `t0` times `step`, so successive looks are never too close.
    func acts(_ gate: inout WakeGate, step: Int = 1, at now: ContinuousClock.Instant? = nil) -> Bool {
        gate.takeActAsNotified(now: now ?? t0 + WakeGate.lookInterval * step)
    }

    /// A gate armed after a drained first claim, as a fresh claimer's is, with the claim after
    /// the arm done and short.
    func armedGate() -> WakeGate {
        var gate = WakeGate()
        #expect(acts(&gate))
        gate.claimed(backlog: false)
        #expect(gate.beforeWait(untilWoken: false, now: t0) == .arm)
        gate.armed(true, now: t0)
        #expect(acts(&gate))
        gate.claimed(backlog: false)
        #expect(!acts(&gate))
        return gate
    }

    @Test func aNewConnectionClaimsFirstAsIfNotifiedAndArmsBeforeItWaits() {
        var gate = WakeGate()
        #expect(gate.phase == .disarmed)
        #expect(gate.atTurn(mayDisarm: true, now: t0) == .none)
        #expect(acts(&gate))
        gate.claimed(backlog: false)
        // The turn after a claim that found nothing more is free to wait…
        #expect(!acts(&gate))
        // …and a timed wait needs writers to be able to end it: arm first.
        #expect(gate.beforeWait(untilWoken: false, now: t0) == .arm)
        gate.armed(true, now: t0)
        #expect(gate.phase == .armed)
        // The claim right after the arm looks at every trigger: whatever committed without
        // notifying before the arm is found by it.
        #expect(acts(&gate))
        gate.claimed(backlog: false)
        #expect(!acts(&gate))
        #expect(gate.atTurn(mayDisarm: true, now: t0) == .none)
        #expect(gate.beforeWait(untilWoken: false, now: t0) == .none)
        #expect(gate.wakeBy(untilWoken: false) == nil)
    }

    @Test func aBacklogKeepsItDisarmedAndLookingAtEveryTriggerEachTurn() {
        var gate = WakeGate()
        for turn in 0..<5 {
            #expect(acts(&gate, step: turn))
            gate.claimed(backlog: true)
            #expect(gate.atTurn(mayDisarm: true, now: t0) == .none)
        }
        #expect(gate.phase == .disarmed)
        // Waiting for room keeps it disarmed, and the wait ends in time for the next look.
        #expect(acts(&gate, step: 5))
        #expect(gate.beforeWait(untilWoken: true, now: t0) == .none)
        #expect(gate.wakeBy(untilWoken: true) == t0 + WakeGate.lookInterval * 6)
        #expect(acts(&gate, step: 6))
        gate.claimed(backlog: false)
        #expect(!acts(&gate, step: 7))
        #expect(gate.beforeWait(untilWoken: false, now: t0) == .arm)
    }

    @Test func aFullClaimWhileArmedDisarmsAndTheDrainLooksAtEveryTrigger() {
        var gate = armedGate()
        gate.claimed(backlog: true)
        #expect(gate.atTurn(mayDisarm: true, now: t0) == .disarm)
        gate.disarmed()
        #expect(gate.phase == .disarmed)
        #expect(acts(&gate, step: 2))
        gate.claimed(backlog: true)
        #expect(acts(&gate, step: 3))
        gate.claimed(backlog: false)
        #expect(!acts(&gate, step: 4))
        #expect(gate.beforeWait(untilWoken: false, now: t0) == .arm)
    }

    @Test func whileDisarmedItLooksAtEveryTriggerOnlyEveryLookInterval() {
        // A claim is shared among the triggers it asks for: asking an idle one every turn
        // would halve a busy one's claims.
        var gate = WakeGate()
        #expect(acts(&gate, at: t0))
        gate.claimed(backlog: true)
        #expect(!acts(&gate, at: t0 + .milliseconds(5)))
        gate.claimed(backlog: true)
        #expect(!acts(&gate, at: t0 + WakeGate.lookInterval - .milliseconds(1)))
        gate.claimed(backlog: true)
        #expect(gate.wakeBy(untilWoken: false) == t0 + WakeGate.lookInterval)
        #expect(acts(&gate, at: t0 + WakeGate.lookInterval))
        #expect(gate.wakeBy(untilWoken: false) == t0 + WakeGate.lookInterval * 2)
    }

    @Test func shortClaimsAndWaitsWhileArmedChangeNothing() {
        var gate = armedGate()
        for untilWoken in [true, false] {
            gate.claimed(backlog: false)
            #expect(gate.atTurn(mayDisarm: true, now: t0) == .none)
            #expect(!acts(&gate))
            #expect(gate.beforeWait(untilWoken: untilWoken, now: t0) == .none)
        }
        #expect(gate.phase == .armed)
    }

    @Test func aRefusedArmIsRetriedWithBackoffAndTheWaitEndsInTime() {
        var gate = WakeGate()
        _ = acts(&gate)
        gate.claimed(backlog: false)
        _ = acts(&gate)
        var now = t0
        var retries: [Duration] = []
        for _ in 0..<10 {
            #expect(gate.beforeWait(untilWoken: false, now: now) == .arm)
            gate.armed(false, now: now)
            #expect(gate.phase == .disarmed)
            // Refused: a writer is committing. No arm before the retry time, and the wait
            // ends by then.
            let retryAt = gate.nextArm ?? now
            #expect((gate.wakeBy(untilWoken: false) ?? .now + .seconds(3600)) <= retryAt)
            #expect(gate.beforeWait(untilWoken: false, now: now) == .none)
            retries.append(retryAt - now)
            now = retryAt
            // Woken for the retry (perhaps looking at every trigger first, every look
            // interval): nothing more, so it waits, and arms first.
            if acts(&gate, at: now) { gate.claimed(backlog: false) }
        }
        #expect(retries.first == WakeGate.firstRetry)
        #expect(retries == retries.sorted())
        #expect(retries.last == WakeGate.longestRetry)
        gate.armed(true, now: now)
        #expect(gate.phase == .armed)
        #expect(acts(&gate))
        #expect(gate.wakeBy(untilWoken: false) == nil)
        // The next refusal starts the backoff over.
        gate.claimed(backlog: true)
        gate.disarmed()
        gate.armed(false, now: now)
        #expect(gate.nextArm == now + WakeGate.firstRetry)
    }

    @Test func listenersBesideTheClaimerKeepItArmed() {
        // Pull consumers or stream clients wait for the same notifications.
        var gate = armedGate()
        gate.claimed(backlog: true)
        #expect(gate.atTurn(mayDisarm: false, now: t0) == .none)
        #expect(gate.phase == .armed)
        // A release decided before a stream client arrived is not carried out.
        gate.claimed(backlog: true)
        #expect(gate.atTurn(mayDisarm: false, now: t0) == .none)
        // Disarmed while draining when a client arrives: it arms at the next turn.
        var draining = WakeGate()
        _ = acts(&draining)
        draining.claimed(backlog: true)
        #expect(draining.atTurn(mayDisarm: true, now: t0) == .none)
        #expect(draining.atTurn(mayDisarm: false, now: t0) == .arm)
    }

    @Test func aReconnectForgetsTheSlotsTheOldSessionHeld() {
        var gate = armedGate()
        gate.connected()
        #expect(gate == WakeGate())
        #expect(gate.phase == .disarmed)
        #expect(acts(&gate))
    }

    @Test func aWaitForRoomAfterARefusedArmEndsAtTheNextLookNotAtOnce() {
        // The arm before a timed wait was refused; then claims filled the pool. A wait for
        // room tries no arm, so the past retry time must not end it at once (a 1 ms spin).
        var gate = WakeGate()
        #expect(acts(&gate, at: t0))
        gate.claimed(backlog: false)
        #expect(gate.beforeWait(untilWoken: false, now: t0) == .arm)
        gate.armed(false, now: t0)
        let later = t0 + .milliseconds(10)
        #expect(gate.beforeWait(untilWoken: true, now: later) == .none)
        #expect(gate.wakeBy(untilWoken: true) == t0 + WakeGate.lookInterval)
        #expect(gate.wakeBy(untilWoken: false) == t0 + WakeGate.firstRetry)
    }

    @Test func aFailedReleaseKeepsTheGateAndTriesAgainAfterTheNextFullClaim() {
        var gate = armedGate()
        gate.claimed(backlog: true)
        #expect(gate.atTurn(mayDisarm: true, now: t0) == .disarm)
        gate.disarmFailed()
        #expect(gate.phase == .armed)
        #expect(gate.atTurn(mayDisarm: true, now: t0) == .none)
        gate.claimed(backlog: true)
        #expect(gate.atTurn(mayDisarm: true, now: t0) == .disarm)
    }
}

/// A Citus worker node's claimer: its writers never notify, so it never arms and looks on
/// its own interval.
@Suite("Wake gate, polling")
struct PollingWakeGateTests {
    let t0 = ContinuousClock.now
    let every = Duration.milliseconds(50)

    func looks(_ gate: inout WakeGate, at now: ContinuousClock.Instant) -> Bool { gate.takeActAsNotified(now: now) }

    @Test func aPollingGateNeverArmsAndLooksOncePerInterval() {
        var gate = WakeGate(mode: .polling(every: every))
        #expect(looks(&gate, at: t0))
        gate.claimed(backlog: false)
        // The turn after a short claim waits; no arm, ever, and the wait ends at the next look.
        #expect(!looks(&gate, at: t0 + .milliseconds(1)))
        #expect(gate.beforeWait(untilWoken: false, now: t0 + .milliseconds(1)) == .none)
        #expect(gate.atTurn(mayDisarm: false, now: t0) == .none)
        #expect(gate.wakeBy(untilWoken: false) == t0 + every)
        #expect(!looks(&gate, at: t0 + .milliseconds(49)))
        #expect(looks(&gate, at: t0 + every))
        #expect(gate.phase == .disarmed)
        // A reconnect keeps the mode.
        gate.connected()
        #expect(gate.mode == .polling(every: every))
        #expect(gate.beforeWait(untilWoken: false, now: t0) == .none)
    }
}
