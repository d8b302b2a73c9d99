import Foundation
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle

/// The worker's HTTP surface (Hummingbird): GET /healthz, /readyz, /metrics, /stats.
/// Runs as a service in the worker's ServiceGroup; the worker reports READY=1 to systemd
/// only after this server is listening.
public enum StatsServer {
    public static func application(
        worker: HeraldWorker, registry: PrometheusCollectorRegistry, address: StatsListenAddress, logger: Logger
    ) -> some Service {
        let token = worker.config.stats.bearerToken
        if token == nil && !address.isLoopback {
            logger.warning(
                "stats endpoint listens on a non-loopback address without a bearer token; set stats.bearer_token_env",
                metadata: ["listen": "\(worker.config.stats.listen)"])
        }
        let router = Router()
        router.add(middleware: BearerTokenMiddleware(token: token))
        router.get("/healthz") { _, _ in
            "ok\n"
        }
        router.get("/readyz") { _, _ -> Response in
            let (ready, reason) = worker.readiness
            return plainText(ready ? "ready\n" : "not ready: \(reason)\n", status: ready ? .ok : .serviceUnavailable)
        }
        router.get("/metrics") { _, _ -> Response in
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
        let application = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(address.host, port: address.port), serverName: "herald"),
            onServerRunning: { channel in
                logger.info("stats endpoint listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "")"])
                worker.statsEndpointRunning.open()
            },
            logger: logger)
        return NamedFailureService(base: application, listen: worker.config.stats.listen)
    }

    static func plainText(_ text: String, status: HTTPResponse.Status) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Runs the endpoint and, when it fails (address taken, permission denied), says which
/// address: the server's own error names only the system call.
struct NamedFailureService<Base: Service>: Service {
    struct ListenError: Error, CustomStringConvertible {
        var listen: String
        var underlying: any Error
        var description: String { "stats endpoint cannot listen on \(listen) (stats.listen): \(underlying)" }
    }

    let base: Base
    let listen: String

    func run() async throws {
        do {
            try await base.run()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw ListenError(listen: listen, underlying: error)
        }
    }
}

/// Requires `Authorization: Bearer <token>` on everything but /healthz when a token is set.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard let token, request.uri.path != "/healthz" else { return try await next(request, context) }
        guard request.headers[.authorization] == "Bearer \(token)" else {
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = "Bearer"
            return Response(
                status: .unauthorized, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "unauthorized\n")))
        }
        return try await next(request, context)
    }
}
