import Hummingbird
import NIOCore
import Synchronization

/// Passes every response body of the listener (/stats, /metrics, console pages) through the
/// configuration's ``Redactor``, as the last step before it is sent: pages show stored
/// errors and response bodies that may quote a secret, and one choke point covers the pages
/// added later too. Bodies here are small and complete (no streaming), so reading one whole
/// costs a copy.
struct RedactingMiddleware<Context: RequestContext>: RouterMiddleware {
    let redactor: Redactor

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        var response = try await next(request, context)
        let collected = CollectedBody()
        try await response.body.write(BodyCollector(target: collected))
        // In a page the placeholder is text, not a tag the browser would swallow.
        let isHTML = response.headers[.contentType]?.hasPrefix("text/html") == true
        let text = redactor(
            String(buffer: collected.buffer.withLock { $0 }), placeholder: isHTML ? Markup.escape(Redaction.placeholder) : Redaction.placeholder)
        response.body = ResponseBody(byteBuffer: ByteBuffer(string: text))
        return response
    }
}

/// Where ``BodyCollector`` keeps what it is given (the writer itself is consumed).
private final class CollectedBody: Sendable {
    let buffer = Mutex(ByteBuffer())
}

/// A response body writer that keeps what it is given.
private struct BodyCollector: ResponseBodyWriter {
    let target: CollectedBody

    mutating func write(_ part: ByteBuffer) async throws {
        var part = part
        _ = target.buffer.withLock { $0.writeBuffer(&part) }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
