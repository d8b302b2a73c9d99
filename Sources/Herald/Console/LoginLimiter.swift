import Synchronization

/// A token bucket over every console login attempt, from anyone: `burst` attempts at once,
/// then `perSecond`. A pause per wrong guess slows one guesser; parallel guessers share
/// this one bucket, so the guessing rate is bounded however many connections they open.
/// Time is passed in, so it is tested without sleeping.
struct LoginLimiter: Sendable {
    enum Decision: Sendable, Equatable {
        case allowed
        /// No attempt left; one is back in this many whole seconds (at least 1).
        case refused(retryAfterSeconds: Int)
    }

    static let burst = 5
    static let perSecond = 1.0

    private let burst: Double
    private let perSecond: Double
    private var tokens: Double
    private var updated: ContinuousClock.Instant

    init(burst: Int = LoginLimiter.burst, perSecond: Double = LoginLimiter.perSecond, now: ContinuousClock.Instant) {
        self.burst = Double(burst)
        self.perSecond = perSecond
        tokens = Double(burst)
        updated = now
    }

    /// Takes one attempt if the bucket holds one.
    mutating func attempt(now: ContinuousClock.Instant) -> Decision {
        refill(now)
        guard tokens >= 1 else {
            return .refused(retryAfterSeconds: max(1, Int(((1 - tokens) / perSecond).rounded(.up))))
        }
        tokens -= 1
        return .allowed
    }

    /// Gives back the attempt of a login that succeeded: only failures use up the bucket.
    mutating func refund(now: ContinuousClock.Instant) {
        refill(now)
        tokens = min(burst, tokens + 1)
    }

    private mutating func refill(_ now: ContinuousClock.Instant) {
        guard now > updated else { return }
        let elapsed = (now - updated).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        tokens = min(burst, tokens + seconds * perSecond)
        updated = now
    }
}

/// The console's one ``LoginLimiter``, shared by every request.
final class SharedLoginLimiter: Sendable {
    private let limiter: Mutex<LoginLimiter>

    init() { limiter = Mutex(LoginLimiter(now: .now)) }

    func attempt() -> LoginLimiter.Decision { limiter.withLock { $0.attempt(now: .now) } }

    func refund() { limiter.withLock { $0.refund(now: .now) } }
}
