/// The Herald extensions on an event trigger that protect receivers: `rate_limit`,
/// `circuit_breaker`, `on_gone`, `disable_after` and `retry_conf.non_retryable_statuses`.
extension TriggerParser {
    static let protectionKeys: Set<String> = ["rate_limit", "circuit_breaker", "on_gone", "disable_after"]

    func parseProtection(_ node: ConfigNode) throws(ConfigError) -> TriggerProtection {
        var protection = TriggerProtection()
        if let rate = try node.child("rate_limit") {
            try rate.rejectUnknownKeys(["per_second", "burst", "shared"])
            let perSecondNode = try rate.required("per_second")
            let perSecond = try perSecondNode.double()
            guard perSecond > 0 else { throw perSecondNode.error(.invalidValue, "must be greater than 0") }
            var burst: Double?
            if let burstNode = try rate.child("burst") {
                let value = try burstNode.double()
                guard value >= 1 else { throw burstNode.error(.invalidValue, "must be at least 1") }
                burst = value
            }
            protection.rateLimit = RateLimitConfig(
                perSecond: perSecond, burst: burst, shared: try rate.child("shared")?.bool() ?? false)
        }
        if let breaker = try node.child("circuit_breaker") {
            if case .scalar = breaker.node {
                protection.circuitBreaker = try breaker.bool() ? CircuitBreakerConfig() : nil
            } else {
                try breaker.rejectUnknownKeys(["failure_ratio", "min_requests", "window_sec", "open_sec"])
                var config = CircuitBreakerConfig()
                if let ratioNode = try breaker.child("failure_ratio") {
                    let ratio = try ratioNode.double()
                    guard ratio > 0, ratio <= 1 else { throw ratioNode.error(.invalidValue, "must be in (0, 1]") }
                    config.failureRatio = ratio
                }
                config.minimumRequests = try integer(breaker, "min_requests", minimum: 1) ?? config.minimumRequests
                config.windowSeconds = try integer(breaker, "window_sec", minimum: 1) ?? config.windowSeconds
                config.openSeconds = try integer(breaker, "open_sec", minimum: 1) ?? config.openSeconds
                protection.circuitBreaker = config
            }
        }
        if let goneNode = try node.child("on_gone") {
            let text = try goneNode.string()
            guard let onGone = OnGone(rawValue: text) else {
                throw goneNode.error(.invalidValue, "unknown on_gone '\(text)' (expected disable, fail or retry)")
            }
            protection.onGone = onGone
        }
        if let afterNode = try node.child("disable_after") {
            let text = try afterNode.string()
            guard let seconds = DurationText.seconds(text), seconds > 0, text.last?.isLetter == true else {
                throw afterNode.error(.invalidValue, "'\(text)' is not a duration such as 12h, 5d or 2w")
            }
            protection.disableAfterSeconds = seconds
        }
        if let statuses = try node.child("retry_conf")?.child("non_retryable_statuses") {
            for element in try statuses.elements() {
                let status = try element.int()
                guard (300..<600).contains(status) else {
                    throw element.error(.invalidValue, "\(status) is not a non-success HTTP status (300–599)")
                }
                protection.nonRetryableStatuses.insert(status)
            }
        }
        return protection
    }
}
