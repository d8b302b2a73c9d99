import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceLifecycle

/// The resumable stream on the worker's listener: `GET /v1/stream/{trigger}` replays a
/// trigger's events from a cursor in commit order (``StreamCursor``) and then follows new
/// ones. Read-only: it changes no delivery state, and any trigger can be streamed, whatever
/// its delivery.
///
/// - Server-Sent Events (the default, `Accept: text/event-stream`): one message per event,
///   `id:` its cursor and `data:` its payload (what a webhook would be sent), so a client
///   resumes with `Last-Event-ID` after a disconnect. While idle, a comment every
///   ``heartbeatInterval`` keeps proxies from closing the connection; it carries an `id:`
///   when the cursor moved without an event (windows that held none of this trigger's), so a
///   client that reconnects does not re-read them.
/// - JSON long poll (`?format=json` or `Accept: application/json`): `{"events": [{cursor,
///   id, payload}], "cursor"}` with up to `batch` events, waiting up to `wait_ms` for one.
///
/// `after` is a cursor, `now` (only what commits from here on), or absent (the oldest event
/// still whole). A cursor older than retention (events it had not served were deleted)
/// answers 410 Gone with `oldest_cursor`. Authentication is the console's: the listener's
/// bearer token (constant-time); without one the stream answers only on a loopback listener.
struct StreamAPI: Sendable {
    let config: HeraldConfig
    let database: ConsoleDatabase
    let bell: NotificationBell
    let clients: StreamClients
    let listenerIsLoopback: Bool
    let logger: Logger

    static let connections = 2
    static let maxBatch = 1000
    static let maxWaitMilliseconds = 30_000
    static let heartbeatInterval: Duration = .seconds(10)
    static let maxClients = 64
    static let lastEventIDHeader = HTTPField.Name("Last-Event-ID")

    init(
        config: HeraldConfig, bell: NotificationBell, clients: StreamClients, listenerIsLoopback: Bool, logger: Logger
    ) {
        self.config = config
        self.bell = bell
        self.clients = clients
        self.listenerIsLoopback = listenerIsLoopback
        self.logger = logger
        database = ConsoleDatabase(
            url: config.database.url, readOnly: true, connections: Self.connections, applicationName: "herald-stream")
    }

    func register(on router: Router<HeraldRequestContext>) {
        router.get("/v1/stream/:trigger") { request, context in
            try await handle(request, trigger: context.parameters.get("trigger") ?? "")
        }
    }

    /// What a request asks for, checked before anything is read.
    struct Request: Equatable {
        var trigger: String
        /// nil: the oldest event still whole; `.now`: from the current snapshot.
        var start: Start
        var batch = 100
        var waitMilliseconds = 0
        var json = false

        enum Start: Equatable {
            case oldest, now
            case cursor(StreamCursor)
        }
    }

    /// Parses the query and headers; `Last-Event-ID` (an EventSource reconnecting) wins over
    /// `after`, which the reconnect repeats from the original URL.
    static func parse(
        trigger: String, query: [String: String], lastEventID: String?, accept: String?
    ) throws(ConsumerProtocol.BadRequest) -> Request {
        var request = Request(trigger: trigger, start: .oldest)
        let known: Set = ["after", "batch", "wait_ms", "format"]
        if let unknown = query.keys.sorted().first(where: { !known.contains($0) }) {
            throw .init(description: "unknown parameter '\(unknown)' (expected after, batch, format, wait_ms)")
        }
        if let after = lastEventID.flatMap({ $0.isEmpty ? nil : $0 }) ?? query["after"] {
            if after == "now" {
                request.start = .now
            } else if let cursor = StreamCursor(text: after) {
                request.start = .cursor(cursor)
            } else {
                throw .init(description: "'\(String(after.prefix(80)))' is not a stream cursor (use the id of a message, 'now', or leave after out)")
            }
        }
        if let text = query["batch"] {
            guard let batch = Int(text), (1...maxBatch).contains(batch) else {
                throw .init(description: "batch must be an integer from 1 to \(maxBatch)")
            }
            request.batch = batch
        }
        if let text = query["wait_ms"] {
            guard let wait = Int(text), (0...maxWaitMilliseconds).contains(wait) else {
                throw .init(description: "wait_ms must be an integer from 0 to \(maxWaitMilliseconds)")
            }
            request.waitMilliseconds = wait
        }
        switch query["format"] {
        case nil: request.json = accept.map { $0.contains("application/json") && !$0.contains("text/event-stream") } ?? false
        case "json": request.json = true
        case "sse": request.json = false
        case let other?: throw .init(description: "format must be sse or json, not '\(other)'")
        }
        return request
    }

    private func handle(_ request: Hummingbird.Request, trigger name: String) async throws -> Response {
        guard let token = config.stats.bearerToken else {
            guard listenerIsLoopback else {
                return ConsumerAPI.json(
                    .forbidden,
                    ConsumerAPI.error("the stream needs stats.bearer_token_env on a listener that is not loopback"))
            }
            return try await authenticated(request, trigger: name)
        }
        guard ConstantTime.bearerMatches(request.headers[.authorization], token: token) else {
            var response = ConsumerAPI.json(.unauthorized, ConsumerAPI.error("a valid bearer token is required"))
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        return try await authenticated(request, trigger: name)
    }

    private func authenticated(_ request: Hummingbird.Request, trigger name: String) async throws -> Response {
        guard let trigger = config.triggers.first(where: { $0.name == name }) else {
            let hint = ClosestName.suggestion(for: name, among: config.triggers.map(\.name)).map { " (did you mean '\($0)'?)" } ?? ""
            return ConsumerAPI.json(.notFound, ConsumerAPI.error("no trigger named '\(name)'\(hint)"))
        }
        let asked: Request
        do throws(ConsumerProtocol.BadRequest) {
            var query: [String: String] = [:]
            for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
            asked = try Self.parse(
                trigger: trigger.name, query: query, lastEventID: Self.lastEventIDHeader.flatMap { request.headers[$0] },
                accept: request.headers[.accept])
        } catch {
            return ConsumerAPI.json(.badRequest, ConsumerAPI.error(error.description))
        }
        let start: StreamCursor
        do {
            start = try await startingCursor(asked)
        } catch {
            return try answer(error, trigger: name)
        }
        if asked.json { return try await longPoll(asked, trigger: trigger, from: start) }
        guard clients.connect(trigger.name, limit: Self.maxClients) else {
            var response = ConsumerAPI.json(
                .serviceUnavailable, ConsumerAPI.error("\(Self.maxClients) stream clients are connected already"))
            response.headers[.retryAfter] = "5"
            return response
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-store"
        // nginx buffers responses by default; a stream must not wait in a proxy's buffer.
        if let name = HTTPField.Name("X-Accel-Buffering") { headers[name] = "no" }
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { [self] writer in
                defer { clients.disconnect(trigger.name) }
                try await serveEvents(asked, trigger: trigger, from: start, to: &writer)
                try await writer.finish(nil)
            })
    }

    /// 410: events the cursor had not served were deleted.
    struct Gone: Error {
        var horizon: UInt64
        var response: Response {
            ConsumerAPI.json(.gone, Self.body(horizon))
        }
        static func body(_ horizon: UInt64) -> String {
            "{\"error\":\"events after this cursor were deleted (retention); resume from oldest_cursor\","
                + "\"oldest_cursor\":\(DeliveryRequest.json(StreamCursor.after(horizon: horizon).text))}"
        }
    }

    private func startingCursor(_ asked: Request) async throws -> StreamCursor {
        let (horizon, current) = try await database.run { try StreamStore(connection: $0).start(trigger: asked.trigger) }
        switch asked.start {
        case .cursor(let cursor):
            // Checked again with every read (in the read's own snapshot); this answers a stale
            // cursor with 410 before a stream starts.
            if cursor.hasLost(horizon: horizon), let horizon { throw Gone(horizon: horizon) }
            return cursor
        case .now:
            return StreamCursor(served: current)
        case .oldest:
            return horizon.map(StreamCursor.after(horizon:)) ?? .origin
        }
    }

    /// One read after `cursor`: the events as (cursor text, public id, payload), and where
    /// the next read starts. Throws ``Gone`` when the read's own snapshot says events it
    /// should have served were deleted.
    private func read(_ cursor: StreamCursor, trigger: TriggerConfig, limit: Int) async throws
        -> (events: [(cursor: String, id: String, payload: String)], advance: StreamPaging.Advance)
    {
        try await database.admin { admin in
            let read = try StreamStore(connection: admin.connection).read(trigger: trigger.name, after: cursor, limit: limit)
            if cursor.hasLost(horizon: read.horizon), let horizon = read.horizon { throw Gone(horizon: horizon) }
            let advance = StreamPaging.advance(from: cursor, page: read.page, limit: limit)
            let events = zip(read.events, advance.cursors).map { event, cursor in
                let id = event.importedID ?? EventID.uuid(key: admin.key, number: event.id)
                return (cursor.text, id, DeliveryRequest.payload(event: event, trigger: trigger, messageID: id))
            }
            return (events, advance)
        }
    }

    /// Whether the stream should end: the client went away (the task is cancelled) or the
    /// worker is stopping (a stream never ends by itself, and the server waits for open
    /// responses before it stops).
    private var ending: Bool { Task.isCancelled || Task.isShuttingDownGracefully }

    private func serveEvents(
        _ asked: Request, trigger: TriggerConfig, from start: StreamCursor, to writer: inout any ResponseBodyWriter
    ) async throws {
        var cursor = start
        var sentCursor = start.text
        // At once, so the client sees the response begin (headers are sent with the first
        // bytes) and knows how soon to reconnect after a drop.
        try await writer.write(ByteBuffer(string: ": herald stream of \(trigger.name)\nretry: 1000\n\n"))
        var lastWrite = ContinuousClock.now
        let poll = Duration.milliseconds(config.worker.fetchIntervalMilliseconds)
        while !ending {
            let since = bell.current
            let events: [(cursor: String, id: String, payload: String)]
            let advance: StreamPaging.Advance
            do {
                (events, advance) = try await read(cursor, trigger: trigger, limit: asked.batch)
            } catch let gone as Gone {
                try await writer.write(ByteBuffer(string: "event: gone\ndata: \(Gone.body(gone.horizon))\n\n"))
                return
            } catch is ConsoleGate.Busy {
                try await Task.sleep(for: .milliseconds(200))
                continue
            } catch let error as PGError {
                // The database restarting or a statement timing out: the client keeps its
                // cursor; the stream carries on when the database answers again.
                logger.warning("stream read failed; retrying", metadata: ["trigger": "\(trigger.name)", "error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
                continue
            }
            cursor = advance.next
            if !events.isEmpty {
                var text = ""
                for event in events {
                    text += "id: \(event.cursor)\ndata: \(event.payload)\n\n"
                }
                try await writer.write(ByteBuffer(string: text))
                sentCursor = events[events.count - 1].cursor
                lastWrite = .now
            }
            guard advance.windowClosed else { continue }
            if ContinuousClock.now - lastWrite >= Self.heartbeatInterval {
                let id = cursor.text == sentCursor ? "" : "id: \(cursor.text)\n"
                try await writer.write(ByteBuffer(string: id + ": heartbeat\n\n"))
                sentCursor = cursor.text
                lastWrite = .now
            }
            // Woken by a capture NOTIFY (the claimer's); polled as well, for setups where
            // NOTIFY does not arrive (pgbouncer in transaction mode).
            await bell.wait(since: since, until: min(lastWrite + Self.heartbeatInterval, .now + poll))
        }
    }

    private func longPoll(_ asked: Request, trigger: TriggerConfig, from start: StreamCursor) async throws -> Response {
        // The listener closes a connection that stays silent for stats.idle_timeout_seconds:
        // a long poll answers two seconds before that.
        let longest = max(0, config.stats.idleTimeoutSeconds * 1000 - 2000)
        let deadline = ContinuousClock.now + .milliseconds(min(asked.waitMilliseconds, longest))
        let poll = Duration.milliseconds(config.worker.fetchIntervalMilliseconds)
        var cursor = start
        do {
            while true {
                let since = bell.current
                let (events, advance) = try await read(cursor, trigger: trigger, limit: asked.batch)
                cursor = advance.next
                if !events.isEmpty || ContinuousClock.now >= deadline || ending {
                    let items = events.map {
                        "{\"cursor\":\(DeliveryRequest.json($0.cursor)),\"id\":\(DeliveryRequest.json($0.id)),\"payload\":\($0.payload)}"
                    }
                    return ConsumerAPI.json(
                        .ok, "{\"events\":[" + items.joined(separator: ",") + "],\"cursor\":\(DeliveryRequest.json(cursor.text))}")
                }
                if !advance.windowClosed { continue }
                await bell.wait(since: since, until: min(deadline, .now + poll))
            }
        } catch {
            return try answer(error, trigger: trigger.name)
        }
    }

    /// The answer to a read that failed before anything was sent: 410 for lost events, 503
    /// (with `Retry-After` when the pool was busy) for the database; anything else is thrown.
    private func answer(_ error: any Error, trigger: String) throws -> Response {
        switch error {
        case let gone as Gone:
            return gone.response
        case let busy as ConsoleGate.Busy:
            var response = ConsumerAPI.json(.serviceUnavailable, ConsumerAPI.error("\(busy)"))
            response.headers[.retryAfter] = "1"
            return response
        case let error as PGError:
            logger.warning("stream request failed", metadata: ["trigger": "\(trigger)", "error": "\(error)"])
            return ConsumerAPI.json(.serviceUnavailable, ConsumerAPI.error("database error: \(error.message)"))
        default:
            throw error
        }
    }
}
