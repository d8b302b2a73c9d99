import Testing

@testable import Herald

/// The wake gate's decisions: when a claimer asks writers to NOTIFY it, and when it must
/// claim as if notified because they do not.
@Suite("Wake gate")
struct WakeGateTests {
    let t0 = ContinuousClock.now

    /// `takeActAsNotified()` (mutating, so not inside `#expect`).
    func acts(_ gate: inout WakeGate) -> Bool { gate.takeActAsNotified() }

    /// A gate armed after a drained first claim, as a fresh claimer's is, with the claim after
    /// the arm done and short.
    func armedGate() -> WakeGate {
        var gate = WakeGate()
        #expect(acts(&gate))
        gate.claimed(backlog: false, mayDisarm: true)
        #expect(gate.beforeWait(untilWoken: false, now: t0) == .arm)
        gate.armed(true, now: t0)
        #expect(acts(&gate))
        gate.claimed(backlog: false, mayDisarm: true)
        #expect(!acts(&gate))
        return gate
    }

    @Test func aNewConnectionClaimsFirstAsIfNotifiedAndArmsBeforeItWaits() {
        var gate = WakeGate()
        #expect(gate.phase == .disarmed)
        #expect(gate.atTurn(mayDisarm: true, now: t0) == .none)
        #expect(acts(&gate))
        gate.claimed(backlog: false, mayDisarm: true)
        // The turn after a claim that found nothing more is free to wait…
        #expect(!acts(&gate))
        // …and a timed wait needs writers to be able to end it: arm first.
        #expect(gate.beforeWait(untilWoken: false, now: t0) == .arm)
        gate.armed(true, now: t0)
        #expect(gate.phase == .armed)
        // The claim right after the arm looks at every trigger: whatever committed without
        // notifying before the arm is found by it.
        #expect(acts(&gate))
        gate.claimed(backlog: false, mayDisarm: true)
        #expect(!acts(&gate))
        #expect(gate.atTurn(mayDisarm: true, now: t0) == .none)
        #expect(gate.beforeWait(untilWoken: false, now: t0) == .none)
        #expect(gate.wakeBy == nil)
    }

    @Test func aBacklogKeepsItDisarmedAndLookingAtEveryTriggerEachTurn() {
        var gate = WakeGate()
        for _ in 0..<5 {
            #expect(acts(&gate))
            gate.claimed(backlog: true, mayDisarm: true)
            #expect(gate.atTurn(mayDisarm: true, now: t0) == .none)
        }
        #expect(gate.phase == .disarmed)
        // Waiting for room keeps it disarmed: the wake-up when room frees claims for all.
        #expect(acts(&gate))
        #expect(gate.beforeWait(untilWoken: true, now: t0) == .none)
        #expect(acts(&gate))
        gate.claimed(backlog: false, mayDisarm: true)
        #expect(!acts(&gate))
        #expect(gate.beforeWait(untilWoken: false, now: t0) == .arm)
    }

    @Test func aFullClaimWhileArmedDisarmsAndTheDrainLooksAtEveryTrigger() {
        var gate = armedGate()
        gate.claimed(backlog: true, mayDisarm: true)
        #expect(gate.atTurn(mayDisarm: true, now: t0) == .disarm)
        gate.disarmed()
        #expect(gate.phase == .disarmed)
        #expect(acts(&gate))
        gate.claimed(backlog: true, mayDisarm: true)
        #expect(acts(&gate))
        gate.claimed(backlog: false, mayDisarm: true)
        #expect(!acts(&gate))
        #expect(gate.beforeWait(untilWoken: false, now: t0) == .arm)
    }

    @Test func shortClaimsAndWaitsWhileArmedChangeNothing() {
        var gate = armedGate()
        for untilWoken in [true, false] {
            gate.claimed(backlog: false, mayDisarm: true)
            #expect(gate.atTurn(mayDisarm: true, now: t0) == .none)
            #expect(!acts(&gate))
            #expect(gate.beforeWait(untilWoken: untilWoken, now: t0) == .none)
        }
        #expect(gate.phase == .armed)
    }

    @Test func aRefusedArmIsRetriedWithBackoffAndTheWaitEndsInTime() {
        var gate = WakeGate()
        _ = acts(&gate)
        gate.claimed(backlog: false, mayDisarm: true)
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
            #expect(gate.wakeBy == retryAt)
            #expect(gate.beforeWait(untilWoken: false, now: now) == .none)
            retries.append(retryAt - now)
            now = retryAt
            // Woken for the retry: it looks at every trigger, finds nothing more, waits.
            #expect(acts(&gate))
            gate.claimed(backlog: false, mayDisarm: true)
            #expect(!acts(&gate))
        }
        #expect(retries.first == WakeGate.firstRetry)
        #expect(retries == retries.sorted())
        #expect(retries.last == WakeGate.longestRetry)
        gate.armed(true, now: now)
        #expect(gate.phase == .armed)
        #expect(acts(&gate))
        #expect(gate.wakeBy == nil)
        // The next refusal starts the backoff over.
        gate.claimed(backlog: true, mayDisarm: true)
        gate.disarmed()
        gate.armed(false, now: now)
        #expect(gate.nextArm == now + WakeGate.firstRetry)
    }

    @Test func listenersBesideTheClaimerKeepItArmed() {
        // Pull consumers or stream clients wait for the same notifications.
        var gate = armedGate()
        gate.claimed(backlog: true, mayDisarm: false)
        #expect(gate.atTurn(mayDisarm: false, now: t0) == .none)
        #expect(gate.phase == .armed)
        // A release decided before a stream client arrived is not carried out.
        gate.claimed(backlog: true, mayDisarm: true)
        #expect(gate.atTurn(mayDisarm: false, now: t0) == .none)
        // Disarmed while draining when a client arrives: it arms at the next turn.
        var draining = WakeGate()
        _ = acts(&draining)
        draining.claimed(backlog: true, mayDisarm: true)
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
}
