import Foundation

/// What every page needs to know about the request it answers.
struct PageContext: Sendable {
    var identity: ConsoleAuth.Identity
    var csrf: String
    var readOnly: Bool
    var links: ConsoleLinks
    /// The path (and query) of this page, for its permalink.
    var path: String
}

/// Stable URLs, absolute when `console.public_url` is set (for log lines and permalinks).
struct ConsoleLinks: Sendable {
    var publicURL: String

    func absolute(_ path: String) -> String {
        guard !publicURL.isEmpty else { return path }
        var base = publicURL
        while base.hasSuffix("/") { base.removeLast() }
        // public_url names where /console is reached; keep any prefix a proxy adds.
        if base.hasSuffix("/console") { base.removeLast("/console".count) }
        return base + path
    }

    static func events(_ form: FilterForm, extra: [(String, String)] = []) -> String {
        let query = FormCoding.encode(form.fields + extra)
        return query.isEmpty ? "/console/events" : "/console/events?\(query)"
    }

    static func event(_ id: String) -> String { "/console/events/\(FormCoding.encodeComponent(id))" }
}

/// The page frame and the pages that are not about events.
enum ConsoleLayout {
    static func page(title: String, context: PageContext?, notice: String? = nil, error: String? = nil, _ body: Markup)
        -> Markup
    {
        var nav: Markup = ""
        if let context {
            var logout: Markup = ""
            if case .session = context.identity {
                logout = """
                    <form method="post" action="/console/logout"><input type="hidden" name="csrf" value="\(context.csrf)">\
                    <button type="submit">Log out</button></form>
                    """
            }
            nav = """
                <a href="/console">Overview</a><a href="/console/events">Events</a>\
                <a href="/console/events?status=failed">Failed</a>\(context.readOnly ? " <span class=\"muted\">read-only</span>" as Markup : "")\(logout)
                """
        }
        let noticeBox: Markup = notice.map { (text: String) -> Markup in "<div class=\"notice\" role=\"status\">\(text)</div>" } ?? ""
        let errorBox: Markup = error.map { (text: String) -> Markup in "<div class=\"error\" role=\"alert\">\(text)</div>" } ?? ""
        let permalink: Markup = context.map { (page: PageContext) -> Markup in
            "<footer>Link to this page: <span class=\"mono\">\(page.links.absolute(page.path))</span> · herald \(Herald.version)</footer>"
        } ?? ""
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="referrer" content="no-referrer">
            <title>\(title) · Herald</title><link rel="stylesheet" href="/console/assets/console.css"></head>
            <body><header><a class="brand" href="/console">Herald</a>\(nav)</header>
            <main>\(noticeBox)\(errorBox)\(body)</main>\(permalink)</body></html>
            """
    }

    static func login(next: String, failed: Bool) -> Markup {
        page(
            title: "Log in", context: nil, error: failed ? "That token is not the one this console expects." : nil,
            """
            <form class="login" method="post" action="/console/login">
            <h1>Herald console</h1>
            <label for="token">Token (the value of <code>stats.bearer_token_env</code>)</label>
            <input id="token" name="token" type="password" autocomplete="current-password" autofocus required>
            <input type="hidden" name="next" value="\(next)">
            <button class="primary" type="submit">Log in</button>
            </form>
            """)
    }

    static func message(title: String, context: PageContext?, _ text: String) -> Markup {
        page(title: title, context: context, "<h1>\(title)</h1><p>\(text)</p>")
    }

    /// A hidden CSRF field for a form of this page.
    static func csrfField(_ context: PageContext) -> Markup {
        "<input type=\"hidden\" name=\"csrf\" value=\"\(context.csrf)\">"
    }

    static func statusBadge(_ status: String, leased: Bool = false) -> Markup {
        let shown = leased ? "in_flight" : status
        return "<span class=\"badge \(shown)\">\(shown.replacingOccurrences(of: "_", with: " "))</span>"
    }

    static func age(_ seconds: Double?) -> String {
        guard let seconds else { return "–" }
        switch seconds {
        case ..<120: return String(format: "%.0fs", seconds)
        case ..<7200: return String(format: "%.0fm", seconds / 60)
        case ..<172_800: return String(format: "%.1fh", seconds / 3600)
        default: return String(format: "%.1fd", seconds / 86400)
        }
    }
}

extension QueueStats {
    /// For `herald stats` when `console.public_url` is set: a link to each trigger's failed
    /// events, to paste into an incident channel.
    public func consoleLinks(publicURL: String) -> [String] {
        guard !publicURL.isEmpty else { return [] }
        let links = ConsoleLinks(publicURL: publicURL)
        return triggers.filter { $0.failed > 0 }.map {
            "failed events of \($0.trigger): "
                + links.absolute(ConsoleLinks.events(FilterForm(trigger: $0.trigger, status: "failed")))
        }
    }
}
