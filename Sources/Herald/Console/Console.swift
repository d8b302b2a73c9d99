import Foundation
import Hummingbird
import Logging

/// The web console: server-rendered pages under /console on the stats listener (or alone,
/// `herald console`). Every page is one or two SELECTs through ``EventBrowser``; every action
/// goes through ``EventAdmin``, the code `herald redeliver-event` runs, and is logged as an
/// audit line naming who, what and how many.
public struct Console: Sendable {
    let config: HeraldConfig
    let auth: ConsoleAuth
    let database: ConsoleDatabase
    /// Every event log it browses: the database's own first, then on a Citus coordinator
    /// each worker node's (their events are the distributed tables').
    let logs: [ConsoleLog]
    let links: ConsoleLinks
    let logger: Logger
    let logins = SharedLoginLimiter()
    /// The stream clients of the worker serving this console; nil for `herald console`,
    /// which serves no stream.
    let streamClients: StreamClients?

    /// `listenerIsLoopback` decides whether an open (token-less) console checks the Host header.
    public init(config: HeraldConfig, listenerIsLoopback: Bool, logger: Logger, streamClients: StreamClients? = nil) {
        self.config = config
        self.streamClients = streamClients
        auth = ConsoleAuth(
            token: config.stats.bearerToken, listenerIsLoopback: listenerIsLoopback,
            secureCookie: config.console.publicURL.lowercased().hasPrefix("https://"))
        database = ConsoleDatabase(
            url: config.database.url, readOnly: config.console.readOnly, connections: config.console.connections)
        logs =
            [ConsoleLog(name: "", group: 0, database: database)]
            // The nodes of the cluster the console's own database coordinates (with several
            // sources, another coordinator's nodes are not its to browse).
            + config.sources.compactMap { source in
                source.citusNode.flatMap { $0.coordinatorSource == config.sources.first?.name ? $0 : nil }.map {
                    ConsoleLog(
                        name: source.name, group: $0.group,
                        database: ConsoleDatabase(
                            url: source.database.url, readOnly: config.console.readOnly,
                            connections: max(1, config.console.connections / 2)))
                }
            }
        links = ConsoleLinks(publicURL: config.console.publicURL)
        self.logger = logger
    }

    var readOnly: Bool { config.console.readOnly }

    /// Adds the console's routes.
    public func register(on router: Router<HeraldRequestContext>) {
        router.get("/console/assets/console.css") { _, _ in
            var headers = ConsoleResponse.securityHeaders
            headers[.contentType] = "text/css; charset=utf-8"
            headers[.cacheControl] = "public, max-age=3600"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: ConsoleAssets.stylesheet)))
        }
        router.get("/console/login") { request, _ in
            guard auth.needsLogin else { return ConsoleResponse.redirect("/console") }
            let next = FormCoding.decode(request.uri.query ?? "")["next"] ?? "/console"
            return ConsoleResponse.html(ConsoleLayout.login(next: Self.safeNext(next), failed: false))
        }
        router.post("/console/login") { request, context in try await login(request, context) }
        router.post("/console/logout") { request, context in
            try await acting(request, context, action: "logout") { _, identity, _ in
                if case .session(let id) = identity {
                    let hash = auth.sessionHash(id)
                    try await database.run { try ConsoleSessions.revoke($0, hash: hash) }
                }
                var response = ConsoleResponse.redirect(auth.needsLogin ? "/console/login" : "/console")
                response.headers[.setCookie] = auth.setCookie("", maxAge: 0)
                return response
            }
        }
        router.get("/console") { request, context in
            try await viewing(request, context) { page in try await overview(page) }
        }
        router.get("/console/events") { request, context in
            try await viewing(request, context) { page in try await events(request, page) }
        }
        router.get("/console/events/:id") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await viewing(request, context) { page in try await event(id, request, page) }
        }
        router.post("/console/events/:id/redeliver") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await acting(request, context, action: "redeliver") { page, identity, _ in
                try await redeliver(id, page: page, identity: identity, from: context.remoteAddress)
            }
        }
        router.get("/console/redeliver") { request, context in
            try await viewing(request, context) { page in
                guard !readOnly else { return ConsoleResponse.readOnly(page) }
                var form = FilterForm(fields: FormCoding.decode(request.uri.query ?? ""))
                form.status = "failed"
                return try await confirm(form, page: page, error: nil)
            }
        }
        router.post("/console/redeliver") { request, context in
            try await acting(request, context, action: "redeliver-all") { page, identity, fields in
                try await redeliverAll(fields, page: page, identity: identity, from: context.remoteAddress)
            }
        }
    }

    // MARK: Authentication wrappers

    /// A GET: authenticated, or sent to the login page (browsers) / refused (scripts).
    private func viewing(
        _ request: Request, _ context: HeraldRequestContext, _ body: (PageContext) async throws -> Response
    ) async throws -> Response {
        await rendering {
            guard let identity = try await identify(request) else {
                if auth.needsLogin, request.headers[.authorization] == nil {
                    return ConsoleResponse.redirect("/console/login?" + FormCoding.encode([("next", request.uri.string)]))
                }
                return ConsoleResponse.unauthorized()
            }
            return try await body(pageContext(identity, request))
        }
    }

    /// Who the request is; a session cookie counts only while its session is live in the
    /// database (not logged out, not revoked, not expired).
    private func identify(_ request: Request) async throws -> ConsoleAuth.Identity? {
        switch auth.credential(request) {
        case .proven(let identity): return identity
        case .session(let id):
            let hash = auth.sessionHash(id)
            return try await database.run { try ConsoleSessions.isLive($0, hash: hash) } ? .session(id) : nil
        case nil: return nil
        }
    }

    /// A POST that changes something: authenticated, with the CSRF token of its session,
    /// and refused outright in read-only mode.
    private func acting(
        _ request: Request, _ context: HeraldRequestContext, action: String,
        _ body: (PageContext, ConsoleAuth.Identity, [String: String]) async throws -> Response
    ) async throws -> Response {
        let fields = try await Self.form(request)
        return await rendering { try await acting(request, context, action: action, fields: fields, body) }
    }

    private func acting(
        _ request: Request, _ context: HeraldRequestContext, action: String, fields: [String: String],
        _ body: (PageContext, ConsoleAuth.Identity, [String: String]) async throws -> Response
    ) async throws -> Response {
        guard let identity = try await identify(request) else { return ConsoleResponse.unauthorized() }
        guard auth.allowsPost(from: identity, csrf: fields["csrf"]) else {
            logger.warning(
                "console request refused: missing or wrong CSRF token",
                metadata: ["action": "\(action)", "who": "\(identity.auditName)", "from": "\(context.remoteAddress)"])
            return ConsoleResponse.html(
                ConsoleLayout.message(
                    title: "Refused", context: nil,
                    "This form has expired or did not come from the console (CSRF check failed). Reload the page and try again."),
                status: .forbidden)
        }
        var page = pageContext(identity, request)
        page.path = request.uri.path
        if readOnly, action != "logout" { return ConsoleResponse.readOnly(page) }
        return try await body(page, identity, fields)
    }

    /// Turns what a page could not do into an error page instead of a dropped connection.
    private func rendering(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let invalid as EventFilter.Invalid {
            return ConsoleResponse.html(
                ConsoleLayout.message(title: "Invalid filter", context: nil, invalid.description), status: .badRequest)
        } catch let busy as ConsoleGate.Busy {
            return ConsoleResponse.busy(busy)
        } catch let unknown as UnknownLog {
            return ConsoleResponse.html(
                ConsoleLayout.message(title: "No such event log", context: nil, unknown.description), status: .notFound)
        } catch {
            logger.error("console page failed", metadata: ["error": "\(error)"])
            return ConsoleResponse.html(
                ConsoleLayout.message(title: "Database error", context: nil, "\(error)"), status: .internalServerError)
        }
    }

    private func pageContext(_ identity: ConsoleAuth.Identity, _ request: Request) -> PageContext {
        PageContext(
            identity: identity, csrf: auth.csrfToken(for: identity), readOnly: readOnly, links: links,
            path: request.uri.string)
    }

    private func login(_ request: Request, _ context: HeraldRequestContext) async throws -> Response {
        guard auth.needsLogin else { return ConsoleResponse.redirect("/console") }
        let fields = try await Self.form(request)
        let next = Self.safeNext(fields["next"] ?? "/console")
        // Taken before the compare, so parallel guesses cannot all pass a check made before
        // any of them failed.
        if case .refused(let retryAfter) = logins.attempt() {
            logger.warning("console login refused: too many failed logins", metadata: ["from": "\(context.remoteAddress)"])
            return ConsoleResponse.tooManyLogins(retryAfterSeconds: retryAfter)
        }
        guard auth.acceptsLogin(fields["token"] ?? "") else {
            logger.warning("console login failed", metadata: ["from": "\(context.remoteAddress)"])
            // A pause per wrong guess also slows a single guesser between refills; the
            // compare itself leaks no timing.
            try await Task.sleep(for: .milliseconds(300))
            return ConsoleResponse.html(ConsoleLayout.login(next: next, failed: true), status: .unauthorized)
        }
        logins.refund()
        let session = ConsoleAuth.newSessionID()
        let hash = auth.sessionHash(session)
        let userAgent = request.headers[.userAgent]
        let remote = "\(context.remoteAddress)"
        return await rendering {
            try await database.run { connection in
                try ConsoleSessions.create(
                    connection, hash: hash, lifetimeSeconds: ConsoleAuth.sessionSeconds, userAgent: userAgent,
                    remoteAddress: remote)
            }
            logger.notice(
                "console login", metadata: ["who": "\(ConsoleAuth.Identity.session(session).auditName)", "from": "\(remote)"])
            var response = ConsoleResponse.redirect(next)
            response.headers[.setCookie] = auth.setCookie(session, maxAge: ConsoleAuth.sessionSeconds)
            return response
        }
    }

    // MARK: Logs

    /// The log named in a form (a Citus worker node's source name); the database's own
    /// when empty.
    /// - Throws: ``UnknownLog`` for a name that is no log of this console (an old link to a
    ///   node since removed): acting on another log instead would be acting on the wrong events.
    private func log(named name: String) throws -> ConsoleLog {
        guard !name.isEmpty else { return logs[0] }
        guard let log = logs.first(where: { $0.name == name }) else { throw UnknownLog(name: name) }
        return log
    }

    struct UnknownLog: Error, CustomStringConvertible {
        var name: String
        var description: String { "no event log named '\(name)' here (a Citus worker node no longer in the cluster?)" }
    }

    /// The log that holds event `idText`. An event number names its node (`id >> 48` is the
    /// Citus group); a payload id is derived with each log's own key, so each is asked.
    private func locate(_ idText: String) async throws -> ConsoleLog {
        guard logs.count > 1 else { return logs[0] }
        if let number = Int64(idText) {
            let group = Int(number >> CitusLayout.eventIDGroupShift)
            return logs.first { $0.group == group } ?? logs[0]
        }
        for log in logs where (try? await log.database.admin({ try $0.number(for: idText) != nil })) == true {
            return log
        }
        return logs[0]
    }

    // MARK: Pages

    private func overview(_ page: PageContext) async throws -> Response {
        let names = config.listedTriggerNames
        let (queue, throughput, states) = try await database.admin { admin in
            let browser = EventBrowser(admin)
            return (try browser.overview(configured: names), try browser.throughput(), try browser.triggerStates())
        }
        // All nodes at once: a node that is down costs the page its connect timeout once, not
        // once per node; it is shown as such and the page still renders.
        let nodes = await withTaskGroup(of: (Int, OverviewPage.NodeLog).self) { group in
            for (index, log) in logs.dropFirst().enumerated() {
                group.addTask {
                    let counts = try? await log.database.run { connection in try EventBrowser.statusCounts(connection) }
                    return (index, OverviewPage.NodeLog(name: log.name, counts: counts))
                }
            }
            var found: [(Int, OverviewPage.NodeLog)] = []
            for await entry in group { found.append(entry) }
            return found.sorted { $0.0 < $1.0 }.map(\.1)
        }
        return ConsoleResponse.html(
            OverviewPage.render(
                queue: queue, throughput: throughput, states: states, triggers: config.triggers,
                streamClients: streamClients?.current ?? [:], nodes: nodes, context: page))
    }

    private func events(_ request: Request, _ page: PageContext) async throws -> Response {
        let fields = FormCoding.decode(request.uri.query ?? "")
        let form = FilterForm(fields: fields)
        let cursor: EventBrowser.Cursor =
            fields["before"].flatMap(Int64.init).map(EventBrowser.Cursor.before)
            ?? fields["after"].flatMap(Int64.init).map(EventBrowser.Cursor.after) ?? .newest
        let notice = Self.notice(fields)
        let triggerNames = Array(Set(config.triggers.map(\.name) + [form.trigger].filter { !$0.isEmpty })).sorted()
        let filter: EventFilter
        do {
            filter = try form.filter()
        } catch {
            return ConsoleResponse.html(
                EventsPage.render(
                    form: form, page: nil, triggers: triggerNames, logs: logs.map(\.name),
                    context: page, notice: nil, error: "\(error)"), status: .badRequest)
        }
        let database = try log(named: form.node).database
        let keyColumns = try await database.keyColumns(config.triggers.map(\.table))
        do {
            let result = try await database.admin { admin in
                try EventBrowser(admin).page(filter, keyColumns: keyColumns, cursor: cursor)
            }
            return ConsoleResponse.html(
                EventsPage.render(
                    form: form, page: result, triggers: triggerNames, logs: logs.map(\.name),
                    context: page, notice: notice, error: nil))
        } catch let invalid as EventFilter.Invalid {
            return ConsoleResponse.html(
                EventsPage.render(
                    form: form, page: nil, triggers: triggerNames, logs: logs.map(\.name),
                    context: page, notice: nil, error: invalid.description), status: .badRequest)
        }
    }

    private func event(_ idText: String, _ request: Request, _ page: PageContext) async throws -> Response {
        let found = try await locate(idText).database.admin { admin -> (EventBrowser.Detail, String)? in
            guard let number = try admin.number(for: idText), let detail = try EventBrowser(admin).detail(number)
            else { return nil }
            return (detail, try admin.publicID(number))
        }
        guard let found else {
            return ConsoleResponse.html(
                ConsoleLayout.message(title: "No such event", context: page, "There is no event \(idText) in this database."),
                status: .notFound)
        }
        let (detail, id) = found
        let notice = Self.notice(FormCoding.decode(request.uri.query ?? ""))
        return ConsoleResponse.html(
            EventPage.render(
                detail: detail, trigger: config.trigger(named: detail.event.triggerName), id: id, context: page,
                notice: notice))
    }

    private func confirm(_ form: FilterForm, page: PageContext, error: String?) async throws -> Response {
        let filter = try form.filter()
        let database = try log(named: form.node).database
        let keyColumns = try await database.keyColumns(config.triggers.map(\.table))
        let count = try await database.admin { try $0.countMatching(filter, keyColumns: keyColumns) }
        return ConsoleResponse.html(ConfirmPage.render(form: form, count: count, context: page, error: error))
    }

    // MARK: Actions

    private func redeliver(
        _ idText: String, page: PageContext, identity: ConsoleAuth.Identity, from address: String
    ) async throws -> Response {
        let (result, publicID) = try await locate(idText).database.admin { admin -> (RedeliveryResult, String?) in
            let result = try admin.redeliver(idText, force: false)
            switch result {
            case .queued(let number), .busy(let number, _): return (result, try admin.publicID(number))
            case .unknown: return (result, nil)
            }
        }
        guard let publicID else {
            return ConsoleResponse.html(
                ConsoleLayout.message(title: "No such event", context: page, "There is no event \(idText) in this database."),
                status: .notFound)
        }
        let path = ConsoleLinks.event(publicID)
        let queued: Bool
        if case .queued = result { queued = true } else { queued = false }
        logger.notice(
            "console action",
            metadata: [
                "action": "redeliver", "who": "\(identity.auditName)", "from": "\(address)", "event": "\(publicID)",
                "count": "\(queued ? 1 : 0)", "result": "\(queued ? "queued" : "busy")", "link": "\(links.absolute(path))",
            ])
        return ConsoleResponse.redirect(path + "?notice=" + (queued ? "redelivered" : "busy"))
    }

    private func redeliverAll(
        _ fields: [String: String], page: PageContext, identity: ConsoleAuth.Identity, from address: String
    ) async throws -> Response {
        var form = FilterForm(fields: fields)
        // Only failed events are redelivered in bulk, whatever the form says.
        form.status = "failed"
        let filter = try form.filter()
        let expected = Int(fields["expected"] ?? "") ?? -1
        let database = try log(named: form.node).database
        let keyColumns = try await database.keyColumns(config.triggers.map(\.table))
        let outcome = try await database.admin { admin -> (count: Int, queued: Int?) in
            // Count and update in one transaction, so what is redelivered is what was counted.
            try admin.connection.transaction {
                let count = try admin.countMatching(filter, keyColumns: keyColumns)
                guard count == expected else { return (count, nil) }
                return (count, try admin.redeliverAll(filter, keyColumns: keyColumns, force: false))
            }
        }
        guard let queued = outcome.queued else {
            return try await confirm(
                form, page: page,
                error: "The number of matching failed events changed from \(expected) to \(outcome.count); check and confirm again.")
        }
        let listPath = ConsoleLinks.events(form)
        logger.notice(
            "console action",
            metadata: [
                "action": "redeliver-all", "who": "\(identity.auditName)", "from": "\(address)", "count": "\(queued)",
                "filter": "\(form.query)", "link": "\(links.absolute(listPath))",
            ])
        return ConsoleResponse.redirect(ConsoleLinks.events(form, extra: [("notice", "bulk"), ("count", String(queued))]))
    }

    // MARK: Helpers

    static func form(_ request: Request) async throws -> [String: String] {
        var request = request
        let buffer = try await request.collectBody(upTo: 64 * 1024)
        return FormCoding.decode(String(buffer: buffer))
    }

    /// Only console paths: a `next` pointing elsewhere would make the login page an open
    /// redirect.
    static func safeNext(_ next: String) -> String {
        guard next.hasPrefix("/console"), !next.hasPrefix("//"), !next.contains("\\") else { return "/console" }
        return next
    }

    static func notice(_ fields: [String: String]) -> String? {
        switch fields["notice"] {
        case "redelivered": "Event queued for redelivery. It keeps its id, so receivers see the same webhook-id."
        case "busy": "A worker is delivering this event right now; it was not changed."
        case "bulk": "Queued \(Int(fields["count"] ?? "") ?? 0) failed events for redelivery."
        default: nil
        }
    }
}

/// One event log the console browses (see ``Console/logs``).
struct ConsoleLog: Sendable {
    /// Empty for the configured database's own log; a Citus worker node's source name.
    let name: String
    /// The Citus group whose ids the log holds (0: the coordinator, or no Citus).
    let group: Int
    let database: ConsoleDatabase
}
