/// A trigger as delivery uses it, made once per trigger and shared by reference by all its
/// jobs: its configuration, retry policy, host key and configured headers. Per event,
/// copying the configuration (a struct of some thirty references), parsing its webhook's
/// host and building its header list showed in the claimer's profile; a job now retains one
/// object instead.
public final class TriggerRoute: Sendable {
    public let trigger: TriggerConfig
    public let policy: RetryPolicy
    /// scheme://host:port, the unit of the per-host limit.
    public let hostKey: String
    /// The trigger's `headers:` as every request carries them (after Herald's own).
    public let configuredHeaders: [DeliveryRequest.Header]

    /// `hostKey` defaults to one parsed from the webhook.
    public init(trigger: TriggerConfig, policy: RetryPolicy, hostKey: String? = nil) {
        self.trigger = trigger
        self.policy = policy
        self.hostKey = hostKey ?? DeliveryJob.hostKey(trigger.webhook)
        configuredHeaders = DeliveryRequest.Prepared.configuredHeaders(trigger)
    }
}
