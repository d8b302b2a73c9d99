import Foundation

/// `/console/events`: the filter form and one keyset page of matching events.
enum EventsPage {
    static func render(
        form: FilterForm, page: EventBrowser.Page?, triggers: [String], logs: [String] = [""], context: PageContext,
        notice: String?, error: String?
    ) -> Markup {
        // On a Citus coordinator: which node's log (the distributed tables' events are there).
        var logChoice: Markup = ""
        if logs.count > 1 {
            let options: [Markup] = logs.map { name in
                "<option value=\"\(name)\"\(name == form.node ? " selected" as Markup : "")>\(name.isEmpty ? "coordinator" : name)</option>"
            }
            logChoice = "<label>Log<select name=\"node\">\(options)</select></label>"
        }
        let triggerOptions: [Markup] = ([""] + triggers).map { name in
            "<option value=\"\(name)\"\(name == form.trigger ? " selected" as Markup : "")>\(name.isEmpty ? "any trigger" : name)</option>"
        }
        let statusOptions: [Markup] = ([""] + EventFilter.statuses).map { status in
            "<option value=\"\(status)\"\(status == form.status ? " selected" as Markup : "")>\(status.isEmpty ? "any status" : status)</option>"
        }
        var table: Markup = ""
        var pager: Markup = ""
        if let page {
            let rows: [Markup] = page.rows.map { row in
                let id = row.publicID
                let result: String =
                    row.lastStatusCode.map { "HTTP \($0)" } ?? row.lastError.map { String($0.prefix(60)) } ?? ""
                return """
                    <tr data-event="\(id)"><td><a href="\(ConsoleLinks.event(id))" class="mono">\(String(id.prefix(8)))…</a>\
                    <div class="muted">#\(row.number)</div></td><td>\(row.trigger)</td><td>\(row.operation)</td>\
                    <td>\(ConsoleLayout.statusBadge(row.status, leased: row.leased))</td><td class="num">\(row.tries)</td>\
                    <td>\(row.createdAt)</td><td>\(result)</td><td class="preview mono">\(row.preview)</td></tr>
                    """
            }
            table =
                page.rows.isEmpty
                ? "<p id=\"no-events\">No events match.</p>"
                : """
                <table id="events"><thead><tr><th>Event</th><th>Trigger</th><th>Op</th><th>Status</th><th class="num">Tries</th>\
                <th>Created (UTC)</th><th>Last result</th><th>Data</th></tr></thead><tbody>\(rows)</tbody></table>
                """
            var links: [Markup] = []
            if let newer = page.newerThan {
                links.append("<a rel=\"prev\" href=\"\(ConsoleLinks.events(form, extra: [("after", String(newer))]))\">← Newer</a>")
            }
            if let older = page.olderThan {
                links.append("<a rel=\"next\" href=\"\(ConsoleLinks.events(form, extra: [("before", String(older))]))\">Older →</a>")
            }
            pager = "<div class=\"pager\">\(links)</div>"
        }
        var bulk: Markup = ""
        if !context.readOnly, form.status == "failed" {
            bulk = """
                <div class="actions"><a class="button" id="bulk-redeliver" href="/console/redeliver?\(form.query)">\
                Redeliver all failed events matching this filter…</a></div>
                """
        }
        return ConsoleLayout.page(
            title: "Events", context: context, notice: notice, error: error,
            """
            <h1>Events</h1>
            <form class="filters" method="get" action="/console/events">
            \(logChoice)<label>Trigger<select name="trigger">\(triggerOptions)</select></label>
            <label>Status<select name="status">\(statusOptions)</select></label>
            <label>Since<input name="since" value="\(form.since)" placeholder="24h" size="6"></label>
            <label>Event id, key value or JSON containment<input class="q mono" name="q" value="\(form.q)" \
            placeholder="42 · 0190…-uuid · {&quot;data&quot;:{&quot;new&quot;:{&quot;status&quot;:&quot;paid&quot;}}}"></label>
            <button class="primary" type="submit">Filter</button> <a href="/console/events">Clear</a>
            </form>
            \(bulk)\(table)\(pager)
            """)
    }
}
