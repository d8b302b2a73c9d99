import ArgumentParser
import Herald
import ServiceLifecycle

struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Serve the web console alone against the database (no delivery).",
        discussion: """
            The same console `herald run` serves under /console on stats.listen, with the same
            token (stats.bearer_token_env). A non-loopback --listen needs that token or
            stats.allow_unauthenticated: true. With console.read_only: true it works with a
            role that may only SELECT from herald's tables.
            """)

    @OptionGroup var options: GlobalOptions

    @Option(help: "host:port to listen on (default: stats.listen, else 127.0.0.1:9465).")
    var listen: String?

    func run() async throws {
        try await reportingErrors {
            let logger = options.makeLogger()
            // On a Citus coordinator the console browses every worker node's log too.
            let config = CitusSources.expand(try options.loadSourceConfig(), logger: logger)
            let text = listen ?? (config.stats.listen.isEmpty ? ConsoleServer.fallbackListen : config.stats.listen)
            guard let address = StatsListenAddress(text) else {
                throw CLIFailure(message: "--listen '\(text)' is not host:port", exitCode: .configError)
            }
            do {
                try ConsoleServer.preflight(config: config, address: address)
            } catch let refused as ConsoleServer.Refused {
                throw CLIFailure(message: refused.description, exitCode: .configError)
            }
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [ConsoleServer.application(
                        config: config, address: address,
                        origin: ConsoleServer.listenOrigin(option: listen, statsListen: config.stats.listen), logger: logger)],
                    gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger))
            try await group.run()
        }
    }
}

struct ConsoleLogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console-logout",
        abstract: "End console login sessions (every browser must log in again).",
        discussion: """
            Sessions live in herald.console_sessions; this revokes them, so their cookies stop
            working at once on every console of this database. Run it after changing the
            console token (stats.bearer_token_env) or when a cookie may have leaked.
            """)

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Revoke every live session.")
    var all = false

    func validate() throws {
        guard all else { throw ValidationError("give --all to revoke every console session") }
    }

    func run() async throws {
        try await reportingErrors {
            let config = try options.loadSourceConfig()
            let revoked = try ConsoleSessions.revokeAll(PGConnection(url: config.database.url))
            print("revoked \(revoked) console session\(revoked == 1 ? "" : "s")")
        }
    }
}
