import Hummingbird

/// The request context of Herald's HTTP listener: Hummingbird's basics plus the peer's
/// address, which the console's audit lines name.
public struct HeraldRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's IP address as the socket saw it (a proxy's, behind one).
    public let remoteAddress: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }
}
