import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// Serves a Hummingbird responder as `Application.run()` does, without the service that
/// `run()` adds to refresh the `Date` header once a second.
///
/// That service sleeps on a Swift concurrency timer. On Linux every timer that fires makes
/// libdispatch's timer thread wrap the wake-up in a 64-byte continuation taken from the heap;
/// the worker thread that runs it frees it into a per-thread cache that keeps up to 65,536
/// (4 MiB a thread) instead of returning them. heaptrack's 12-minute recording of a loaded
/// worker found that one call site still growing (977 continuations, one per timer fired):
/// a slow climb of about 0.3 MiB/h for a service meant to run for months. The endpoint answers
/// probes and scrapes, not traffic, so each response formats its own `Date`.
struct TimerFreeHTTPService<Responder: HTTPResponder>: Service
where Responder.Context == HeraldRequestContext {
    /// Thrown instead of the parser error met while writing a response: Hummingbird would
    /// answer a parser error with a second response; any other error just closes the channel.
    struct WriteFailedOnParseError: Error {}

    let responder: Responder
    let server: HTTPServerBuilder
    let configuration: ServerConfiguration
    let logger: Logger
    let onServerRunning: @Sendable (any Channel) async -> Void

    func run() async throws {
        let responder = self.responder
        let logger = self.logger
        let serverName = configuration.serverName
        let service = try server.buildServer(
            configuration: configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger,
            responder: { request, responseWriter, channel in
                var requestLogger = logger
                requestLogger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
                let context = HeraldRequestContext(source: .init(channel: channel, logger: requestLogger))
                var response: Response
                do {
                    response = try await responder.respond(to: request, context: context)
                } catch let error as HTTPParserError {
                    throw error
                } catch {
                    requestLogger.debug("unhandled error answered with 500", metadata: ["error.type": "\(error)"])
                    response = Response(status: .internalServerError, body: .init())
                }
                response.headers[.date] = HTTPDate.format(Date())
                if let serverName { response.headers[.server] = serverName }
                do {
                    try await responseWriter.write(response: response.head, body: response.body)
                } catch is HTTPParserError {
                    throw WriteFailedOnParseError()
                }
            },
            onServerRunning: onServerRunning)
        try await service.run()
    }
}

/// The `Date` header's form (RFC 9110 IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
enum HTTPDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func format(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let day = days[Int(parts.tm_wday) % 7]
        let month = months[Int(parts.tm_mon) % 12]
        return "\(day), \(two(parts.tm_mday)) \(month) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
