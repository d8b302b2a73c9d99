import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import Prometheus
import ServiceLifecycle

/// The worker's HTTP surface (Hummingbird): GET /healthz, /readyz, /metrics, /stats, and
/// the console under /console.
/// Runs as a service in the worker's ServiceGroup; the worker reports READY=1 to systemd
/// only after this server is listening.
public enum StatsServer {
    public static func application(
        worker: HeraldWorker, registry: PrometheusCollectorRegistry, address: StatsListenAddress, logger: Logger
    ) -> some Service {
        let token = worker.config.stats.bearerToken
        if token == nil && !address.isLoopback {
            // Only reachable with stats.allow_unauthenticated: true; the config refuses it otherwise.
            logger.warning(
                "stats endpoint and console listen on a non-loopback address without a bearer token (allow_unauthenticated)",
                metadata: ["listen": "\(worker.config.stats.listen)"])
        }
        let router = Router(context: HeraldRequestContext.self)
        router.add(middleware: RedactingMiddleware(redactor: Redactor(config: worker.config)))
        router.add(middleware: BearerTokenMiddleware(token: token))
        if token == nil && address.isLoopback {
            router.add(middleware: LoopbackHostMiddleware())
        }
        router.get("/healthz") { _, _ in
            "ok\n"
        }
        router.get("/readyz") { request, _ -> Response in
            let (text, ready) = readyText(worker, source: request.uri.queryParameters.get("source"))
            return plainText(text, status: ready ? .ok : .serviceUnavailable)
        }
        router.get("/metrics") { _, _ -> Response in
            worker.recordReadiness()
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("/stats") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(
                status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: worker.statsJSON())))
        }
        if !worker.config.consumers.isEmpty {
            ConsumerAPI(config: worker.config, bell: worker.notificationBell, logger: logger) { worker.reportFailedEvents($0) }
                .register(on: router)
        }
        StreamAPI(
            config: worker.config, bell: worker.notificationBell, clients: worker.streamClients,
            listenerIsLoopback: address.isLoopback, logger: logger
        ).register(on: router)
        if worker.config.console.enabled {
            Console(
                config: worker.config, listenerIsLoopback: address.isLoopback, logger: logger,
                streamClients: worker.streamClients
            ).register(on: router)
        }
        // Hummingbird's idle timer restarts only when a whole request part (head, body chunk,
        // end) arrives, so it is also the header-read timeout: a client trickling a partial
        // head is closed when it runs out.
        let application = TimerFreeHTTPService(
            responder: router.buildResponder(),
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(worker.config.stats.idleTimeoutSeconds)))),
            configuration: ServerConfiguration(address: .hostname(address.host, port: address.port), serverName: "herald"),
            logger: logger,
            onServerRunning: { channel in
                var metadata: Logger.Metadata = ["address": "\(channel.localAddress.map { "\($0)" } ?? "")"]
                if worker.config.console.enabled {
                    metadata["console"] = "\(ConsoleLinks(publicURL: worker.config.console.publicURL).absolute("/console"))"
                }
                logger.info("stats endpoint listening", metadata: metadata)
                worker.statsEndpointRunning.open()
            })
        return NamedFailureService(base: application, listen: worker.config.stats.listen)
    }

    /// /readyz: 200 while at least one source can be worked on; with `sources:` the body
    /// lists every source's state. `?source=NAME` asks about one source alone.
    static func readyText(_ worker: HeraldWorker, source: String?) -> (String, Bool) {
        let sources = worker.sourceReadiness
        func line(_ state: HeraldWorker.SourceReadiness) -> String {
            "source \(state.source): " + (state.ready ? "ready" : "not ready: \(state.problem)") + "\n"
        }
        if let source {
            guard let state = sources.first(where: { $0.source == source }) else {
                return ("unknown source \(source)\n", false)
            }
            let stopping = worker.readiness.reason == "shutting down"
            return (stopping ? "not ready: shutting down\n" : line(state), state.ready && !stopping)
        }
        let (ready, reason) = worker.readiness
        var text = ready ? "ready\n" : "not ready: \(reason)\n"
        if worker.config.usesSourcesList { text += sources.map(line).joined() }
        text += driftLines(worker.triggerDrift, labelled: worker.config.usesSourcesList)
        return (text, ready)
    }

    /// The configuration's disagreements with the database, one line each with its fix. They
    /// do not make the worker unready (the triggers that agree deliver), but a probe's body
    /// is where an operator looks when events do not arrive.
    static func driftLines(_ drift: [String: TriggerDrift], labelled: Bool) -> String {
        drift.sorted { $0.key < $1.key }.flatMap { source, drift in
            drift.findings.map { "warning: \(labelled ? "source \(source): " : "")\($0.line)\n" }
        }.joined()
    }

    static func plainText(_ text: String, status: HTTPResponse.Status) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Runs the endpoint and, when it fails (address taken, permission denied), says which
/// address, where that address came from and what to do: the server's own error names only
/// the system call.
struct NamedFailureService<Base: Service>: Service {
    struct ListenError: Error, CustomStringConvertible {
        var what: String
        var listen: String
        /// The setting or option the address came from, and the way out.
        var origin: String
        var underlying: any Error
        var description: String { "\(what) cannot listen on \(listen): \(reason); \(origin)" }

        /// The system's words for the failure: NIO's text wraps them in the system call's
        /// signature and an errno, which reads as noise (and an unbalanced parenthesis).
        var reason: String {
            let text = "\(underlying)"
            guard let match = text.firstMatch(of: /errno: (\d+)/), let code = Int32(match.1) else { return text }
            return String(cString: strerror(code)).lowercased()
        }
    }

    let base: Base
    let listen: String
    var what = "stats endpoint"
    var origin = "the address is stats.listen (or HERALD_STATS_LISTEN): choose a free one, or \"\" to disable the endpoint"

    func run() async throws {
        do {
            try await base.run()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw ListenError(what: what, listen: listen, origin: origin, underlying: error)
        }
    }
}

/// Requires `Authorization: Bearer <token>` on everything but /healthz when a token is set.
/// The console does its own authentication (a cookie or the same header), so /console is
/// left to it.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: Secret?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let path = request.uri.path
        // The console, the pull API (each consumer its own token) and the stream authenticate themselves.
        guard let token, path != "/healthz", path != "/console", !path.hasPrefix("/console/"), !path.hasPrefix("/v1/") else {
            return try await next(request, context)
        }
        guard ConstantTime.bearerMatches(request.headers[.authorization], token: token) else {
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = "Bearer"
            return Response(
                status: .unauthorized, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "unauthorized\n")))
        }
        return try await next(request, context)
    }
}

/// On a token-less loopback listener, answers only requests addressed to a loopback name:
/// a page on another site that rebinds its DNS name to 127.0.0.1 reaches the port, but its
/// requests carry that site's name in Host, so they cannot read /stats, /metrics or the
/// console (and its CSRF token).
struct LoopbackHostMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard ConsoleAuth.isLoopbackHost(request.head.authority ?? "") else {
            return Response(
                status: .misdirectedRequest,
                body: ResponseBody(byteBuffer: ByteBuffer(string: "this listener answers loopback names only (localhost, 127.x.y.z, [::1])\n")))
        }
        return try await next(request, context)
    }
}
