/// `/console/redeliver?…`: how many failed events a bulk redelivery would touch, and the
/// button that does it. The count travels with the POST: if more events failed since, the
/// operator is asked again instead of redelivering what they did not see.
enum ConfirmPage {
    static func render(form: FilterForm, count: Int, context: PageContext, error: String? = nil) -> Markup {
        let hidden: [Markup] = form.fields.map { "<input type=\"hidden\" name=\"\($0.0)\" value=\"\($0.1)\">" }
        let body: Markup =
            count == 0
            ? "<p id=\"confirm-count\" data-count=\"0\">No failed events match this filter; nothing to redeliver.</p>"
            : """
            <p id="confirm-count" data-count="\(count)">Redeliver <strong>\(count)</strong> failed \(count == 1 ? "event" : "events")? \
            Each goes back to pending with its attempts reset and keeps its id (receivers can drop duplicates by webhook-id).</p>
            <form method="post" action="/console/redeliver">\(ConsoleLayout.csrfField(context))\(hidden)\
            <input type="hidden" name="expected" value="\(count)">
            <div class="actions"><button class="danger" id="confirm" type="submit">Redeliver \(count) \(count == 1 ? "event" : "events")</button>\
            <a href="\(ConsoleLinks.events(form))">Cancel</a></div></form>
            """
        return ConsoleLayout.page(
            title: "Redeliver failed events", context: context, error: error,
            """
            <h1>Redeliver failed events</h1>
            <p class="muted">Filter: trigger \(form.trigger.isEmpty ? "any" : form.trigger) · \
            since \(form.since.isEmpty ? "ever" : form.since) · q \(form.q.isEmpty ? "–" : form.q)</p>
            \(body)
            """)
    }
}
