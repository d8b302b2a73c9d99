import Foundation
import Logging
import Synchronization
import Testing

@testable import Herald

@Suite("Token bucket and circuit breaker")
struct GateUnitTests {
    let t0 = ContinuousClock.now

    @Test func bucketStartsFullRefillsAtItsRateAndCapsAtBurst() {
        var bucket = TokenBucket(rate: 20, burst: 20, now: t0)
        let tokens1 = bucket.available(now: t0)
        #expect(tokens1 == 20)
        bucket.take(20)
        let tokens2 = bucket.available(now: t0)
        #expect(tokens2 == 0)
        #expect(bucket.nextToken(after: t0) == t0 + .milliseconds(50))
        let tokens3 = bucket.available(now: t0 + .milliseconds(500))
        #expect(tokens3 == 10)
        let tokens4 = bucket.available(now: t0 + .seconds(60))
        #expect(tokens4 == 20)
    }

    @Test func sharedBucketHasOnlyWhatPostgreSQLGranted() {
        var bucket = TokenBucket(rate: 10, burst: 10, now: t0, refills: false)
        let tokens5 = bucket.available(now: t0 + .seconds(5))
        #expect(tokens5 == 0)
        #expect(bucket.nextToken(after: t0) == nil)
        bucket.grant(3)
        let tokens6 = bucket.available(now: t0 + .seconds(5))
        #expect(tokens6 == 3)
    }

    @Test func breakerOpensAtTheRatioOnlyAfterMinimumRequests() {
        var breaker = CircuitBreaker(config: CircuitBreakerConfig(failureRatio: 0.7, minimumRequests: 10), now: t0)
        for _ in 0..<9 {
            let transition7 = breaker.record(failure: true, now: t0)
            #expect(transition7 == nil)
        }
        let transition = breaker.record(failure: true, now: t0)
        #expect(transition == .opened(.init(requests: 10, failures: 10)))
        #expect(breaker.state == .open(until: t0 + .seconds(30)))
        #expect(breaker.claimAllowance() == 0)
    }

    @Test func breakerStaysClosedBelowTheRatioAndForgetsOldFailures() {
        var breaker = CircuitBreaker(
            config: CircuitBreakerConfig(failureRatio: 0.6, minimumRequests: 4, windowSeconds: 10), now: t0)
        for step in 0..<10 { _ = breaker.record(failure: step % 3 == 0, now: t0) }  // 4 of 10
        #expect(breaker.state == .closed)
        // Ten seconds later the window is empty: three failures are not yet enough.
        let later = t0 + .seconds(11)
        for _ in 0..<3 {
            let transition8 = breaker.record(failure: true, now: later)
            #expect(transition8 == nil)
        }
        #expect(breaker.reading(now: later) == .init(requests: 3, failures: 3))
        let transition9 = breaker.record(failure: true, now: later)
        #expect(transition9 != nil)
    }

    @Test func halfOpenLetsOneProbeWhoseOutcomeDecides() {
        var breaker = CircuitBreaker(config: CircuitBreakerConfig(minimumRequests: 1, openSeconds: 2), now: t0)
        _ = breaker.record(failure: true, now: t0)
        let advanced10 = breaker.advance(now: t0 + .seconds(1))
        #expect(advanced10 == nil)
        let advanced11 = breaker.advance(now: t0 + .seconds(2))
        #expect(advanced11 == .halfOpened)
        #expect(breaker.claimAllowance() == 1)
        breaker.claimed(1)
        #expect(breaker.claimAllowance() == 0)
        // A failed probe re-opens for another open_sec.
        let transition12 = breaker.record(failure: true, now: t0 + .seconds(3))
        #expect(transition12 == .opened(.init(requests: 1, failures: 1, probeFailed: true)))
        #expect(breaker.state == .open(until: t0 + .seconds(5)))
        _ = breaker.advance(now: t0 + .seconds(5))
        breaker.claimed(0)  // nothing was due: the probe is still to be sent
        #expect(breaker.claimAllowance() == 1)
        breaker.claimed(1)
        breaker.probeAbandoned()
        #expect(breaker.claimAllowance() == 1)
        breaker.claimed(1)
        let transition13 = breaker.record(failure: false, now: t0 + .seconds(6))
        #expect(transition13 == .closed)
        #expect(breaker.claimAllowance() == nil)
        #expect(breaker.reading(now: t0 + .seconds(6)).requests == 0)
    }

    @Test func outcomesOfRequestsSentBeforeOpeningChangeNothing() {
        var breaker = CircuitBreaker(config: CircuitBreakerConfig(minimumRequests: 1, openSeconds: 30), now: t0)
        _ = breaker.record(failure: true, now: t0)
        let transition14 = breaker.record(failure: false, now: t0)
        #expect(transition14 == nil)
        #expect(breaker.state == .open(until: t0 + .seconds(30)))
    }
}

@Suite("Receiver verdict")
struct VerdictTests {
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    func policy(onGone: OnGone = .disable, nonRetryable: Set<Int> = []) -> RetryPolicy {
        var policy = RetryPolicy(
            retry: RetryConfig(numRetries: 5, intervalSeconds: 10), backoff: RetryBackoff(), maxRetryAfterSeconds: 3600)
        policy.onGone = onGone
        policy.nonRetryableStatuses = nonRetryable
        return policy
    }

    func verdict(_ policy: RetryPolicy, _ result: AttemptResult, _ directive: ReceiverDirective? = nil) -> Verdict {
        policy.verdict(attempt: 1, result: result, directive: directive, now: now, random: { 0.5 })
    }

    @Test func goneDisablesByDefaultFailsOrRetriesWhenConfigured() {
        let gone = AttemptResult.response(status: 410, retryAfter: nil)
        #expect(verdict(policy(), gone) == Verdict(decision: .deferred, disableTrigger: "receiver answered 410 Gone", breakerFailure: false))
        #expect(verdict(policy(onGone: .fail), gone).decision == .failed)
        #expect(verdict(policy(onGone: .retry), gone).decision == .retry(afterSeconds: 10))
    }

    @Test func webhookDeliveryHeaderAbortsTheMessageOrDisablesTheTrigger() {
        let error = AttemptResult.response(status: 500, retryAfter: nil)
        #expect(verdict(policy(), error, .abortMessage) == Verdict(decision: .failed, breakerFailure: true))
        let disabled = verdict(policy(), error, .disable)
        #expect(disabled.decision == .deferred)
        #expect(disabled.disableTrigger?.contains("webhook-delivery") == true)
        // A 2xx is delivered whatever the header says, but "disable" still disables.
        let ok = AttemptResult.response(status: 200, retryAfter: nil)
        #expect(verdict(policy(), ok, .abortMessage).decision == .delivered)
        #expect(verdict(policy(), ok, .disable).disableTrigger != nil)
        #expect(ReceiverDirective(header: " Abort-Message ") == .abortMessage)
        #expect(ReceiverDirective(header: "something else") == nil)
    }

    @Test func nonRetryableStatusesFailAtOnceOthersFollowTheSchedule() {
        let policy = policy(nonRetryable: [400, 422])
        #expect(verdict(policy, .response(status: 422, retryAfter: nil)).decision == .failed)
        #expect(verdict(policy, .response(status: 404, retryAfter: nil)).decision == .retry(afterSeconds: 10))
    }

    @Test func onlyTimeoutsConnectionErrors5xxAnd429CountAgainstTheBreaker() {
        #expect(verdict(policy(), .response(status: 503, retryAfter: nil)).breakerFailure == true)
        #expect(verdict(policy(), .response(status: 429, retryAfter: nil)).breakerFailure == true)
        #expect(verdict(policy(), .response(status: 404, retryAfter: nil)).breakerFailure == false)
        #expect(verdict(policy(), .failure(.timeout, message: "t")).breakerFailure == true)
        #expect(verdict(policy(), .failure(.connection, message: "c")).breakerFailure == true)
        #expect(verdict(policy(), .failure(.internal, message: "i")).breakerFailure == nil)
    }
}

@Suite("Flow control gates")
struct FlowGateTests {
    struct Job: FlowJob, Equatable {
        var id: Int
        var hostKey = "a"
        var triggerName = "t"
        var startDeadline: ContinuousClock.Instant
    }

    let t0 = ContinuousClock.now

    func flow(_ protection: TriggerProtection) -> FlowControl<Job> {
        FlowControl(
            limits: .init(
                poolSize: 100, perHostLimit: 100, fetchBatchSize: 100, leaseSeconds: 300, recorderBacklogLimit: 1000,
                pollInterval: .seconds(1)),
            routes: [FlowRoute(trigger: "t", hostKey: "a", timeout: .seconds(10), protection: protection)], now: t0)
    }

    func jobs(_ count: Int) -> [Job] { (0..<count).map { Job(id: $0, startDeadline: t0 + .seconds(100)) } }

    @Test func claimsNeverExceedTheTokensAndWaitForTheNextOne() {
        var protection = TriggerProtection()
        protection.rateLimit = RateLimitConfig(perSecond: 20, burst: 5)
        var flow = flow(protection)
        let plan15 = flow.planClaim(now: t0).plan
        #expect(plan15 == .claim(["t": 5]))
        _ = flow.claimed(jobs(5), limits: ["t": 5])
        // Out of tokens: sleep until the next one, not the whole poll interval.
        let plan16 = flow.planClaim(now: t0).plan
        #expect(plan16 == .wait(until: t0 + .milliseconds(50)))
        let (plan17, notices) = flow.planClaim(now: t0 + .milliseconds(100))
        #expect(plan17 == .claim(["t": 2]))
        #expect(notices.contains { if case .rateLimited("t") = $0 { true } else { false } })
    }

    @Test func anOpenBreakerHoldsTheTriggerGivesBackItsQueueAndLetsOneProbeThrough() {
        var protection = TriggerProtection()
        protection.circuitBreaker = CircuitBreakerConfig(minimumRequests: 3, openSeconds: 2)
        var flow = flow(protection)
        _ = flow.planClaim(now: t0).plan
        _ = flow.claimed(jobs(10), limits: ["t": 100])
        _ = flow.takeStartable(freeSlots: 3, now: t0)
        var notices: [FlowControl<Job>.Notice] = []
        for _ in 0..<3 { notices += flow.recordOutcome(trigger: "t", succeeded: false, breakerFailure: true, now: t0) }
        #expect(notices.contains { if case .circuit("t", .opened) = $0 { true } else { false } })
        #expect(notices.contains { if case .release(let jobs, .circuitOpen) = $0 { jobs.count == 7 } else { false } })
        #expect(flow.queuedTotal == 0)
        flow.notified()
        let plan18 = flow.planClaim(now: t0 + .seconds(1)).plan
        #expect(plan18 == .wait(until: t0 + .seconds(2)))
        let plan19 = flow.planClaim(now: t0 + .seconds(2)).plan
        #expect(plan19 == .claim(["t": 1]))
        _ = flow.claimed(jobs(1), limits: ["t": 1])
        let plan20 = flow.planClaim(now: t0 + .seconds(2)).plan
        #expect(plan20 != .claim(["t": 1]))
        flow.recordOutcome(trigger: "t", succeeded: true, breakerFailure: false, now: t0 + .seconds(3))
        #expect(flow.circuitState("t") == .closed)
    }

    /// A run of attempts told at once does what telling each does: a half-open breaker
    /// closes on the first delivery, `disable_after`'s failing streak ends.
    @Test func aRunOfSuccessesTellsTheGateWhatEachWould() {
        var protection = TriggerProtection()
        protection.circuitBreaker = CircuitBreakerConfig(minimumRequests: 3, openSeconds: 2)
        protection.disableAfterSeconds = 60
        func halfOpen() -> FlowControl<Job> {
            var flow = flow(protection)
            for _ in 0..<3 { flow.recordOutcome(trigger: "t", succeeded: false, breakerFailure: true, now: t0) }
            _ = flow.planClaim(now: t0 + .seconds(2))
            return flow
        }
        var one = halfOpen()
        var each: [FlowControl<Job>.Notice] = []
        for _ in 0..<3 { each += one.recordOutcome(trigger: "t", succeeded: true, breakerFailure: false, now: t0 + .seconds(3)) }
        var run = halfOpen()
        let together = run.recordOutcomes(
            trigger: "t", attempts: Array(repeating: (true, false), count: 3), now: t0 + .seconds(3))
        #expect(together.count == each.count && together.count == 1)
        #expect(together.contains { if case .circuit("t", .closed) = $0 { true } else { false } })
        #expect(run.circuitState("t") == .closed && one.circuitState("t") == .closed)
        // The failing streak ended: 70 s later one failure does not disable it.
        run.recordOutcome(trigger: "t", succeeded: false, breakerFailure: true, now: t0 + .seconds(70))
        #expect(!run.isDisabled("t"))
    }

    @Test func disablingGivesBackTheQueueAndEnablingLooksForEventsAgain() {
        var flow = flow(TriggerProtection())
        _ = flow.claimed(jobs(4), limits: [:])
        let notices = flow.disable("t", reason: "receiver answered 410 Gone")
        #expect(notices.count == 2)
        let plan21 = flow.planClaim(now: t0).plan
        #expect(plan21 == .wait(until: t0 + .seconds(1)))
        let change22 = flow.setDisabled([])
        #expect(change22.enabled == ["t"] && change22.disabled.isEmpty)
        let plan23 = flow.planClaim(now: t0).plan
        #expect(plan23 == .claim(["t": 100]))
    }

    @Test func disableAfterDisablesATriggerThatKeepsFailing() {
        var protection = TriggerProtection()
        protection.circuitBreaker = nil
        protection.disableAfterSeconds = 60
        var flow = flow(protection)
        flow.recordOutcome(trigger: "t", succeeded: false, breakerFailure: true, now: t0)
        flow.recordOutcome(trigger: "t", succeeded: true, breakerFailure: false, now: t0 + .seconds(30))
        flow.recordOutcome(trigger: "t", succeeded: false, breakerFailure: true, now: t0 + .seconds(40))
        #expect(!flow.isDisabled("t"))
        flow.recordOutcome(trigger: "t", succeeded: false, breakerFailure: true, now: t0 + .seconds(100))
        #expect(flow.isDisabled("t"))
    }

    @Test func sharedLimitsAskPostgreSQLForABlockAndBackOffWhenRefused() {
        var protection = TriggerProtection()
        protection.rateLimit = RateLimitConfig(perSecond: 40, burst: 40, shared: true)
        var flow = flow(protection)
        let requests24 = flow.tokenRequests(now: t0)
        #expect(requests24 == ["t": 10])
        flow.granted(0, to: "t", now: t0)
        let requests25 = flow.tokenRequests(now: t0 + .milliseconds(10))
        #expect(requests25 == [:])
        let requests26 = flow.tokenRequests(now: t0 + .milliseconds(30))
        #expect(requests26 == ["t": 10])
        flow.granted(10, to: "t", now: t0)
        let plan27 = flow.planClaim(now: t0).plan
        #expect(plan27 == .claim(["t": 10]))
    }
}

@Suite("Protection config")
struct ProtectionConfigTests {
    func trigger(_ keys: String) throws -> TriggerConfig {
        let yaml = oneTriggerYAML(withKeys: keys)
        return try #require(try ConfigLoader.parse(yaml: yaml, file: "h.yaml", environment: [:]).triggers.first)
    }

    @Test func defaultsAreSafe() throws {
        let protection = try trigger("").protection
        #expect(protection.circuitBreaker == CircuitBreakerConfig())
        #expect(protection.rateLimit == nil)
        #expect(protection.onGone == .disable)
        #expect(protection.nonRetryableStatuses.isEmpty)
    }

    @Test func everyKeyIsRead() throws {
        let protection = try trigger(
            """
            rate_limit: {per_second: 2.5, burst: 10, shared: true}
            circuit_breaker: {failure_ratio: 0.5, min_requests: 4, window_sec: 30, open_sec: 5}
            on_gone: fail
            disable_after: 5d
            retry_conf: {num_retries: 3, non_retryable_statuses: [400, 422]}
            """).protection
        #expect(protection.rateLimit == RateLimitConfig(perSecond: 2.5, burst: 10, shared: true))
        #expect(protection.circuitBreaker == CircuitBreakerConfig(failureRatio: 0.5, minimumRequests: 4, windowSeconds: 30, openSeconds: 5))
        #expect(protection.onGone == .fail)
        #expect(protection.disableAfterSeconds == 5 * 86400)
        #expect(protection.nonRetryableStatuses == [400, 422])
        #expect(try trigger("circuit_breaker: false").protection.circuitBreaker == nil)
        #expect(try trigger("rate_limit: {per_second: 7}").protection.rateLimit?.burst == 7)
    }

    @Test(arguments: [
        ("rate_limit: {per_second: 0}", "rate_limit.per_second"),
        ("circuit_breaker: {failure_ratio: 2}", "circuit_breaker.failure_ratio"),
        ("on_gone: ignore", "on_gone"),
        ("disable_after: 5", "disable_after"),
        ("retry_conf: {non_retryable_statuses: [200]}", "non_retryable_statuses"),
        ("rate_limit: {per_second: 1, bursts: 2}", "bursts"),
    ])
    func badValuesNameTheKey(keys: String, culprit: String) throws {
        let error = #expect(throws: ConfigError.self) { try trigger(keys) }
        #expect(error?.description.contains(culprit) == true, "\(String(describing: error))")
    }
}

@Suite("Failure log lines")
struct FailureLogLineTests {
    let t0 = ContinuousClock.now

    @Test func breakerLinesCarryTheNumbersThatOpenedIt() {
        let config = CircuitBreakerConfig(failureRatio: 0.5, minimumRequests: 4, windowSeconds: 60, openSeconds: 30)
        let (window, metadata) = FlowNoticeReporter.openedLine(
            TriggerRef(name: "t"), CircuitBreaker.Reading(requests: 10, failures: 7), config)
        #expect(
            "\(window)"
                == "circuit breaker opened: 7 of 10 requests failed in the last 60s (ratio 0.7, opens at 0.5 with at least 4 requests); events wait 30s, tries untouched")
        #expect(metadata["failures"] == "7")
        // A failed probe after open_sec: the window is empty, so no "0 of 0 failed".
        let (probe, probeMetadata) = FlowNoticeReporter.openedLine(
            TriggerRef(name: "t"), CircuitBreaker.Reading(requests: 1, failures: 1, probeFailed: true), config)
        #expect("\(probe)" == "circuit breaker opened again: the half-open probe failed; events wait 30s, tries untouched")
        #expect(probeMetadata["requests"] == nil)
    }

    func failed(_ trigger: String, _ id: Int64) -> DeliveryOutcome {
        let event = ClaimedEvent(
            id: id, triggerName: trigger, table: TableName(schema: "public", name: "t"), payload: "{}", tries: 2,
            createdAt: "", createdAtEpoch: 0)
        return DeliveryOutcome(
            event: event, attempt: 3, result: .response(status: 500, retryAfter: nil), decision: .failed, requestHeaders: [],
            responseBody: nil, durationMilliseconds: 1)
    }

    @Test func eachFinalFailureIsLoggedAtMostOncePerTriggerPerInterval() {
        let log = FinalFailureLog(logger: Logger(label: "test"))
        let first = log.lines([failed("a", 1), failed("a", 2), failed("b", 3), failed("a", 4)], now: t0)
        #expect(first.map { $0["event"] } == ["1", "3"])
        #expect(first[0]["last_result"] == "HTTP 500")
        #expect(first[0]["attempts"] == "3")
        let later = log.lines([failed("a", 5)], now: t0 + FinalFailureLog.interval)
        #expect(later.map { $0["event"] } == ["5"])
        #expect(later[0]["more_failed_not_logged"] == "2")
    }
}

/// A Citus worker node's trigger shares its coordinator's gate: one breaker, one rate limit
/// and one disabled state for the trigger across the cluster.
@Suite("Gates shared across Citus nodes")
struct SharedGateTests {
    typealias Job = FlowControlTests.Job
    let t0 = ContinuousClock.now
    let owner = TriggerRef(source: "default", name: "t")
    let node = TriggerRef(source: "default:node1", name: "t")

    /// A gate's notice reaches every member (each node's trigger) in one batch and is
    /// announced once; another source's trigger of the same name is another gate, announced
    /// too.
    @Test func aSharedGateIsAnnouncedOnceAndAnotherSourcesTriggerOfTheSameNameToo() {
        let alerts = Mutex<[Alert]>([])
        let other = TriggerRef(source: "billing", name: "t")
        let reporter = FlowNoticeReporter(
            logger: Logger(label: "test"), metrics: HeraldMetrics(triggers: [owner, node, other]),
            alert: { alert in alerts.withLock { $0.append(alert) } }, breakers: [:])
        reporter.report([
            .disabled(trigger: owner, reason: "410"), .disabled(trigger: node, reason: "410"),
            .disabled(trigger: other, reason: "410"),
        ])
        #expect(alerts.withLock { $0.count } == 2)
        #expect(CitusNode.configuredSource(of: "default:node1") == "default")
        #expect(CitusNode.configuredSource(of: "billing") == "billing")
    }

    func flow(_ protection: TriggerProtection) -> FlowControl<Job> {
        var shared = FlowRoute(trigger: "t", source: "default:node1", hostKey: "a", timeout: .seconds(10), protection: protection)
        shared.sharesGateOf = owner
        return FlowControl(
            limits: .init(
                poolSize: 100, perHostLimit: 100, fetchBatchSize: 100, leaseSeconds: 300, recorderBacklogLimit: 1000,
                pollInterval: .seconds(1)),
            routes: [FlowRoute(trigger: "t", source: "default", hostKey: "a", timeout: .seconds(10), protection: protection), shared],
            now: t0)
    }

    func jobs(_ count: Int, source: String, from first: Int = 0) -> [Job] {
        (first..<first + count).map {
            Job(id: $0, hostKey: "a", triggerName: "t", startDeadline: t0 + .seconds(100), sourceName: source)
        }
    }

    @Test func failuresOnANodeOpenTheOneBreakerForEveryNode() {
        var protection = TriggerProtection()
        protection.circuitBreaker = CircuitBreakerConfig(minimumRequests: 3, openSeconds: 2)
        var flow = flow(protection)
        _ = flow.claimed(jobs(5, source: "default"), limits: ["t": 100], source: "default")
        _ = flow.claimed(jobs(10, source: "default:node1", from: 5), limits: ["t": 100], source: "default:node1")
        _ = flow.takeStartable(freeSlots: 3, now: t0)
        var notices: [FlowControl<Job>.Notice] = []
        for _ in 0..<3 { notices += flow.recordOutcome(trigger: node, succeeded: false, breakerFailure: true, now: t0) }
        // Reported for each trigger (each node's state and metric), every queue given back.
        #expect(notices.contains { if case .circuit(owner, .opened) = $0 { true } else { false } })
        #expect(notices.contains { if case .circuit(node, .opened) = $0 { true } else { false } })
        #expect(flow.queuedTotal == 0)
        #expect(flow.circuitState(owner) == flow.circuitState(node))
        flow.notified(source: "default")
        #expect(flow.planClaim(source: "default", now: t0 + .seconds(1)).plan == .wait(until: t0 + .seconds(2)))
    }

    @Test func onlyTheOwnersDatabaseDisablesOrEnablesTheSharedGate() {
        var flow = flow(TriggerProtection())
        _ = flow.claimed(jobs(4, source: "default:node1"), limits: ["t": 100], source: "default:node1")
        // A node's database is not heard: a write that failed there must not make the gate flip.
        #expect(flow.setDisabled(["t"], source: "default:node1").disabled.isEmpty)
        #expect(!flow.isDisabled(node))
        // The owner's is, for every node: the node's queued jobs are given back too.
        let change = flow.setDisabled(["t"], source: "default")
        #expect(change.disabled == ["t"])
        #expect(flow.isDisabled(owner) && flow.isDisabled(node))
        #expect(flow.queuedTotal == 0, "the node's queued jobs were given back too")
        #expect(flow.setDisabled([], source: "default:node1").enabled.isEmpty)
        #expect(flow.isDisabled(node))
        #expect(flow.setDisabled([], source: "default").enabled == ["t"])
        #expect(!flow.isDisabled(node))
    }

    @Test func aFailedClaimGivesBackTheProbeItReserved() {
        var protection = TriggerProtection()
        protection.circuitBreaker = CircuitBreakerConfig(minimumRequests: 3, openSeconds: 2)
        var flow = flow(protection)
        _ = flow.claimed(jobs(3, source: "default"), limits: ["t": 100], source: "default")
        _ = flow.takeStartable(freeSlots: 3, now: t0)
        for _ in 0..<3 { _ = flow.recordOutcome(trigger: owner, succeeded: false, breakerFailure: true, now: t0) }
        flow.notified(source: "default:node1")
        flow.notified(source: "default")
        // Half-open: the node plans the one probe, and its node goes down mid-claim.
        #expect(flow.planClaim(source: "default:node1", now: t0 + .seconds(2)).plan == .claim(["t": 1]))
        #expect(flow.planClaim(source: "default", now: t0 + .seconds(2)).plan != .claim(["t": 1]))
        flow.claimFailed(source: "default:node1")
        // The probe is free again for the coordinator's claimer.
        #expect(flow.planClaim(source: "default", now: t0 + .seconds(2)).plan == .claim(["t": 1]))
    }

    @Test func twoNodesPlanningAtOnceNeverSpendTheSameTokens() {
        var protection = TriggerProtection()
        protection.rateLimit = RateLimitConfig(perSecond: 10, burst: 10)
        var flow = flow(protection)
        // Both claimers plan before either claim returns: the second finds the tokens gone.
        #expect(flow.planClaim(source: "default", now: t0).plan == .claim(["t": 10]))
        #expect(flow.planClaim(source: "default:node1", now: t0).plan == .wait(until: t0 + .milliseconds(100)))
        // The first claim found 4 events: the 6 tokens it did not use are the node's.
        _ = flow.claimed(jobs(4, source: "default"), limits: ["t": 10], source: "default")
        #expect(flow.planClaim(source: "default:node1", now: t0).plan == .claim(["t": 6]))
        // A planned claim that never reported (its query failed) gives its tokens back at the
        // next plan.
        #expect(flow.planClaim(source: "default:node1", now: t0).plan == .claim(["t": 6]))
    }
}
