import Hummingbird
import NIOCore
import Synchronization

/// Passes every response body of the listener (/stats, /metrics, console pages) through the
/// configuration's ``Redactor``, as the last step before it is sent: pages show stored
/// errors and response bodies that may quote a secret, and one choke point covers the pages
/// added later too. Bodies here are small and complete, so reading one whole costs a copy;
/// the one streamed body (the event stream, which never ends) is redacted write by write,
/// each write being whole messages.
struct RedactingMiddleware<Context: RequestContext>: RouterMiddleware {
    let redactor: Redactor

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        var response = try await next(request, context)
        if response.headers[.contentType] == "text/event-stream" {
            let body = response.body
            response.body = ResponseBody { [redactor] writer in
                try await body.write(RedactingWriter(base: writer, redactor: redactor))
            }
            return response
        }
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

/// Redacts each write of a streamed body on its way to the client.
private struct RedactingWriter: ResponseBodyWriter {
    var base: any ResponseBodyWriter
    let redactor: Redactor

    mutating func write(_ part: ByteBuffer) async throws {
        try await base.write(ByteBuffer(string: redactor(String(buffer: part), placeholder: Redaction.placeholder)))
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await base.finish(trailingHeaders)
    }
}
