import Hummingbird
import Logging
import ServiceLifecycle

/// `herald console`: the console alone against the database, delivering nothing. Useful
/// with a SELECT-only role (`console.read_only: true`) or on a host other than the worker's.
public enum ConsoleServer {
    public struct Refused: Error, CustomStringConvertible {
        public var description: String
    }

    /// Checks what must hold before listening: the address is safe to expose as configured
    /// and the database carries Herald's schema at this binary's version.
    public static func preflight(config: HeraldConfig, address: StatsListenAddress) throws {
        if let problem = address.exposureProblem(
            hasToken: config.stats.bearerToken != nil, allowUnauthenticated: config.stats.allowUnauthenticated)
        {
            throw Refused(description: "--listen \(problem)")
        }
        let connection = try PGConnection(url: config.database.url)
        let version = try SchemaMigrator.currentVersion(connection)
        guard version == SchemaMigrator.latestVersion else {
            throw Refused(
                description: "schema herald is at version \(version), this herald needs \(SchemaMigrator.latestVersion): run herald install-triggers")
        }
    }

    public static func application(config: HeraldConfig, address: StatsListenAddress, logger: Logger) -> some Service {
        let router = Router(context: HeraldRequestContext.self)
        router.add(middleware: RedactingMiddleware(redactor: Redactor(config: config)))
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/") { _, _ in ConsoleResponse.redirect("/console") }
        Console(config: config, listenerIsLoopback: address.isLoopback, logger: logger).register(on: router)
        // The same idle and header-read timeout as the worker's listener (see StatsServer).
        let application = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(config.stats.idleTimeoutSeconds)))),
            configuration: ApplicationConfiguration(address: .hostname(address.host, port: address.port), serverName: "herald"),
            onServerRunning: { channel in
                logger.info(
                    "console listening",
                    metadata: [
                        "address": "\(channel.localAddress.map { "\($0)" } ?? "")",
                        "read_only": "\(config.console.readOnly)",
                        "url": "\(ConsoleLinks(publicURL: config.console.publicURL).absolute("/console"))",
                    ])
            },
            logger: logger)
        return NamedFailureService(base: application, listen: "\(address.host):\(address.port)")
    }
}
