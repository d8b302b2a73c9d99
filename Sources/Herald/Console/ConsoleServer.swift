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
    /// The console's address when `--listen` is not given: stats.listen, so the console is
    /// where a worker's would be; else this port.
    public static let fallbackListen = "127.0.0.1:9465"

    /// Where `herald console`'s address came from, and the way out when it is taken. Without
    /// `--listen` it is stats.listen, which a running `herald run` holds: the likely clash.
    public static func listenOrigin(option: String?, statsListen: String) -> String {
        if option != nil { return "the address is --listen: choose a free one" }
        let source = statsListen.isEmpty ? "the default" : "stats.listen (the default without --listen)"
        return "the address is \(source), which a running herald run may hold (it serves the console there too):"
            + " pass --listen HOST:PORT, e.g. --listen \(fallbackListen)"
    }

    public static func preflight(config: HeraldConfig, address: StatsListenAddress) throws {
        if let problem = address.exposureProblem(
            hasToken: config.stats.bearerToken != nil, allowUnauthenticated: config.stats.allowUnauthenticated)
        {
            throw Refused(description: "--listen \(problem)")
        }
        let connection = try PGConnection(url: config.database.url)
        if let problem = SchemaCheck.problem(version: try SchemaMigrator.currentVersion(connection)) {
            throw Refused(description: problem)
        }
    }

    /// - Parameter origin: where the address came from and what to do when it is taken, for
    ///   the message (see ``listenOrigin(option:statsListen:)``).
    public static func application(config: HeraldConfig, address: StatsListenAddress, origin: String, logger: Logger)
        -> some Service
    {
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
        return NamedFailureService(
            base: application, listen: "\(address.host):\(address.port)", what: "herald console", origin: origin)
    }
}
