import Foundation
import Hummingbird
import Logging

/// Pull consumer groups on the worker's listener:
///
/// - `POST /v1/consumers/{name}/receive` `{max, wait_ms}` → `{"events": [{ack_id, id, trigger, attempt, payload}]}`,
///   long-polling up to `wait_ms` (woken by the capture NOTIFY the claimer hears);
/// - `POST /v1/consumers/{name}/ack` `{ack_ids}` → `{"acked": n, "stale": [...]}`;
/// - `POST /v1/consumers/{name}/nack` `{ack_ids, retry_after}` → `{"nacked": n, "failed": n, "stale": [...]}`.
///
/// Each consumer authenticates with its own bearer token (constant-time). Database work runs
/// on a small pool of its own (``ConsoleDatabase``), never on the worker's connections.
struct ConsumerAPI: Sendable {
    let config: HeraldConfig
    let database: ConsoleDatabase
    let bell: NotificationBell
    let onFailedEvents: @Sendable ([DeliveryOutcome]) -> Void
    let logger: Logger

    static let connections = 4
    static let maxBodyBytes = 256 * 1024

    init(
        config: HeraldConfig, bell: NotificationBell, logger: Logger,
        onFailedEvents: @escaping @Sendable ([DeliveryOutcome]) -> Void
    ) {
        self.config = config
        self.bell = bell
        self.logger = logger
        self.onFailedEvents = onFailedEvents
        database = ConsoleDatabase(
            url: config.database.url, readOnly: false, connections: Self.connections, applicationName: "herald-consumers")
    }

    func register(on router: Router<HeraldRequestContext>) {
        router.post("/v1/consumers/:name/receive") { request, context in
            try await handle(request, context) { consumer, body in try await receive(consumer, body) }
        }
        router.post("/v1/consumers/:name/ack") { request, context in
            try await handle(request, context) { consumer, body in try await answer(consumer, body, ack: true) }
        }
        router.post("/v1/consumers/:name/nack") { request, context in
            try await handle(request, context) { consumer, body in try await answer(consumer, body, ack: false) }
        }
    }

    /// Finds and authenticates the consumer, reads the body, and turns every failure into a
    /// JSON error with the status that names its cause.
    private func handle(
        _ request: Request, _ context: HeraldRequestContext,
        _ body: @Sendable (ConsumerConfig, [UInt8]) async throws -> String
    ) async throws -> Response {
        let name = context.parameters.get("name") ?? ""
        guard let consumer = config.consumers.first(where: { $0.name == name }) else {
            return Self.json(.notFound, Self.error("no consumer named '\(name)'"))
        }
        guard ConstantTime.bearerMatches(request.headers[.authorization], token: consumer.token) else {
            var response = Self.json(.unauthorized, Self.error("a valid bearer token for consumer '\(name)' is required"))
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        do {
            var request = request
            let buffer = try await request.collectBody(upTo: Self.maxBodyBytes)
            return Self.json(.ok, try await body(consumer, Array(buffer: buffer)))
        } catch let bad as ConsumerProtocol.BadRequest {
            return Self.json(.badRequest, Self.error(bad.description))
        } catch let busy as ConsoleGate.Busy {
            var response = Self.json(.serviceUnavailable, Self.error("\(busy)"))
            response.headers[.retryAfter] = "1"
            return response
        } catch let error as PGError {
            logger.warning("pull consumer request failed", metadata: ["consumer": "\(name)", "error": "\(error)"])
            return Self.json(.serviceUnavailable, Self.error("database error: \(error.message)"))
        }
    }

    private func triggers(of consumer: ConsumerConfig) -> [TriggerConfig] {
        config.triggers.filter { $0.pullConsumer == consumer.name }
    }

    // MARK: Receive

    private func receive(_ consumer: ConsumerConfig, _ body: [UInt8]) async throws -> String {
        let asked = try ConsumerProtocol.parseReceive(body)
        let triggers = triggers(of: consumer)
        let limits = ConsumerProtocol.limits(max: asked.max, triggers: triggers.map(\.name))
        // The listener closes a connection that stays silent for stats.idle_timeout_seconds
        // (its header-read timeout): a long poll answers two seconds before that.
        let longest = max(0, config.stats.idleTimeoutSeconds * 1000 - 2000)
        let deadline = ContinuousClock.now + .milliseconds(min(asked.waitMilliseconds, longest))
        let poll = Duration.milliseconds(config.worker.fetchIntervalMilliseconds)
        while true {
            let since = bell.current
            let events = try await database.admin { admin in
                try receiveOnce(admin, consumer: consumer, limits: limits, triggers: triggers)
            }
            if !events.isEmpty || ContinuousClock.now >= deadline {
                return "{\"events\":[" + events.joined(separator: ",") + "]}"
            }
            // Woken by a capture NOTIFY; polled as well, for retries falling due and for
            // setups where NOTIFY does not arrive (pgbouncer in transaction mode).
            await bell.wait(since: since, until: min(deadline, .now + poll))
        }
    }

    /// One claim for the consumer. Receives whose lease lapsed get their attempt row; events
    /// received as often as their trigger allows fail (or block their key) instead of being
    /// handed out again.
    private func receiveOnce(
        _ admin: EventAdmin, consumer: ConsumerConfig, limits: [String: Int], triggers: [TriggerConfig]
    ) throws -> [String] {
        let store = ConsumerStore(connection: admin.connection)
        let received = try store.receive(
            limits: limits, consumer: consumer.name, visibilitySeconds: consumer.visibilityTimeoutSeconds)
        guard !received.isEmpty else { return [] }
        let byName = Dictionary(triggers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var lapsed: [ClaimedEvent] = []
        var exhausted: [DeliveryOutcome] = []
        var handed: [String] = []
        let now = Date()
        for item in received {
            guard let trigger = byName[item.event.triggerName] else { continue }
            let event = item.event
            if event.tries >= trigger.retry.maxAttempts {
                // Every receive allowed was made and none was answered.
                let policy = RetryPolicy(trigger: trigger, worker: config.worker)
                let result = AttemptResult.failure(.timeout, message: Self.lapsedMessage(consumer))
                let verdict = policy.verdict(
                    attempt: event.tries, result: result, directive: nil, now: now, keyed: event.orderingKey != nil)
                exhausted.append(
                    DeliveryOutcome(
                        event: event, attempt: event.tries, result: result, decision: verdict.decision,
                        requestHeaders: Self.identity(event, key: admin.key),
                        responseBody: nil, durationMilliseconds: Double(consumer.visibilityTimeoutSeconds * 1000)))
                continue
            }
            if item.previousLapsed { lapsed.append(event) }
            let publicID = event.importedID ?? EventID.uuid(key: admin.key, number: event.id)
            handed.append(
                ConsumerProtocol.eventJSON(
                    ackID: ConsumerProtocol.ackID(publicID: publicID, leaseToken: event.leaseToken), publicID: publicID,
                    trigger: trigger.name, attempt: event.tries + 1,
                    payload: DeliveryRequest.payload(event: event, trigger: trigger, messageID: publicID)))
        }
        try store.recordLapsed(lapsed, visibilitySeconds: consumer.visibilityTimeoutSeconds)
        if !exhausted.isEmpty {
            try EventStore(connection: admin.connection).record(exhausted, workerID: ConsumerStore.holder(consumer.name))
            onFailedEvents(exhausted.filter { $0.decision.isTerminalFailure })
        }
        return handed
    }

    /// What a pull attempt's row keeps of its "request": the id the consumer saw, as a
    /// webhook's `webhook-id` (alerts and the console name the event by it).
    static func identity(_ event: ClaimedEvent, key: EventIDKey) -> [DeliveryRequest.Header] {
        [.init(name: "webhook-id", value: event.importedID ?? EventID.uuid(key: key, number: event.id), isSecret: false)]
    }

    static func lapsedMessage(_ consumer: ConsumerConfig) -> String {
        "not acknowledged within the consumer's visibility timeout (\(consumer.visibilityTimeoutSeconds) s)"
    }

    // MARK: Ack and nack

    private func answer(_ consumer: ConsumerConfig, _ body: [UInt8], ack: Bool) async throws -> String {
        let answer = try ConsumerProtocol.parseAnswer(body, allowsRetryAfter: !ack)
        let triggers = Dictionary(triggers(of: consumer).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let (written, stale) = try await database.admin { admin in
            try answerOnce(admin, consumer: consumer, answer: answer, ack: ack, triggers: triggers)
        }
        let failed = written.filter { $0.decision.isTerminalFailure }
        if !failed.isEmpty { onFailedEvents(failed) }
        let staleJSON = "[" + stale.map(DeliveryRequest.json).joined(separator: ",") + "]"
        if ack { return "{\"acked\":\(written.count),\"stale\":\(staleJSON)}" }
        return "{\"nacked\":\(written.count - failed.count),\"failed\":\(failed.count),\"stale\":\(staleJSON)}"
    }

    /// Writes the answers whose lease the consumer still holds; returns those outcomes and
    /// the ack ids that answer nothing any more (a lapsed and re-received lease, an event
    /// answered already, or not an ack id of this consumer).
    private func answerOnce(
        _ admin: EventAdmin, consumer: ConsumerConfig, answer: ConsumerProtocol.Answer, ack: Bool,
        triggers: [String: TriggerConfig]
    ) throws -> ([DeliveryOutcome], [String]) {
        var wanted: [String: (ackID: String, lease: Int64)] = [:]
        var stale: [String] = []
        var numbers: [Int64] = []
        var imported: [String] = []
        for ackID in answer.ackIDs {
            guard let (publicID, lease) = ConsumerProtocol.parseAckID(ackID), UUID(uuidString: publicID) != nil else {
                stale.append(ackID)
                continue
            }
            let id = publicID.lowercased()
            wanted[id] = (ackID, lease)
            if let number = EventID.number(from: id, key: admin.key) { numbers.append(number) } else { imported.append(id) }
        }
        let held = try ConsumerStore(connection: admin.connection).held(
            numbers: numbers, importedIDs: imported, consumer: consumer.name)
        let now = Date()
        var outcomes: [DeliveryOutcome] = []
        var ackIDByEvent: [Int64: String] = [:]
        // Each held event's public id once (an id costs four HMACs).
        let heldByPublicID = Dictionary(
            held.map { ($0.importedID ?? EventID.uuid(key: admin.key, number: $0.id), $0) }, uniquingKeysWith: { first, _ in first })
        for (publicID, request) in wanted.sorted(by: { $0.key < $1.key }) {
            guard let event = heldByPublicID[publicID], event.leaseToken == request.lease,
                let trigger = triggers[event.triggerName]
            else {
                stale.append(request.ackID)
                continue
            }
            ackIDByEvent[event.id] = request.ackID
            let attempt = event.tries + 1
            let duration = Date().timeIntervalSince1970 * 1000 - Double(event.leaseToken) / 1000
            if ack {
                outcomes.append(
                    DeliveryOutcome(
                        event: event, attempt: attempt, result: .response(status: 200, retryAfter: nil), decision: .delivered,
                        requestHeaders: Self.identity(event, key: admin.key), responseBody: "acknowledged by consumer \(consumer.name)",
                        durationMilliseconds: duration))
                continue
            }
            let policy = RetryPolicy(trigger: trigger, worker: config.worker)
            let result = AttemptResult.failure(.nack, message: "nacked by consumer \(consumer.name)")
            var decision = policy.verdict(
                attempt: attempt, result: result, directive: nil, now: now, keyed: event.orderingKey != nil).decision
            if case .retry = decision, let wait = answer.retryAfterSeconds { decision = .retry(afterSeconds: wait) }
            outcomes.append(
                DeliveryOutcome(
                    event: event, attempt: attempt, result: result, decision: decision,
                    requestHeaders: Self.identity(event, key: admin.key), responseBody: nil, durationMilliseconds: duration))
        }
        let recorded = try EventStore(connection: admin.connection).record(outcomes, workerID: ConsumerStore.holder(consumer.name))
        let applied = outcomes.filter { recorded.applied.contains($0.event.id) }
        stale += outcomes.filter { !recorded.applied.contains($0.event.id) }.compactMap { ackIDByEvent[$0.event.id] }
        return (applied, stale)
    }

    // MARK: Responses

    static func error(_ message: String) -> String { "{\"error\":\(DeliveryRequest.json(message))}" }

    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text + "\n")))
    }
}
