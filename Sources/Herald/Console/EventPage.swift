import Foundation

/// `/console/events/{id}`: the payload as delivered, every attempt, and the actions.
enum EventPage {
    static func render(
        detail: EventBrowser.Detail, trigger: TriggerConfig?, id: String, context: PageContext, notice: String?
    ) -> Markup {
        let event = detail.event
        let payload = prettyPayload(event: event, trigger: trigger, id: id)
        let attempts: [Markup] = detail.attempts.reversed().map { attempt in
            let outcome =
                attempt.statusCode.map { "HTTP \($0)" } ?? "\(attempt.errorClass ?? "error")"
            let ok = attempt.statusCode.map { (200..<300).contains($0) } ?? false
            let headers: [Markup] = attempt.headers.map { (header: (name: String, value: String)) -> Markup in
                "<tr><th>\(header.name)</th><td class=\"mono\">\(header.value)</td></tr>"
            }
            let message: Markup =
                attempt.errorMessage.flatMap { (text: String) -> Markup? in
                    text == outcome ? nil : "<p class=\"mono\">\(text)</p>"
                } ?? ""
            return """
                <section class="attempt" data-attempt="\(attempt.attempt)"><h3>Attempt \(attempt.attempt) · \
                \(ConsoleLayout.statusBadge(ok ? "delivered" : "failed")) \(outcome) · \(String(format: "%.1f", attempt.durationMs)) ms · \
                <span class="muted">\(attempt.at) UTC</span></h3>\(message)
                <table class="headers">\(headers)</table>
                <h4>Response body</h4><pre class="response">\(attempt.responseBody ?? "")</pre></section>
                """
        }
        var actions: Markup = ""
        if !context.readOnly {
            let bulk: Markup =
                detail.status == "failed"
                ? """
                <a class="button" href="/console/redeliver?\(FilterForm(trigger: event.triggerName, status: "failed").query)">\
                Redeliver all failed events of \(event.triggerName)…</a>
                """ : ""
            actions = """
                <div class="actions"><form method="post" action="\(ConsoleLinks.event(id))/redeliver">\(ConsoleLayout.csrfField(context))\
                <button class="danger" id="redeliver" type="submit">Redeliver</button></form>\(bulk)</div>
                """
        }
        let lease: Markup = detail.leasedBy.map { (worker: String) -> Markup in "<dt>Leased by</dt><dd class=\"mono\">\(worker)</dd>" } ?? ""
        let finished: Markup = detail.finishedAt.map { (time: String) -> Markup in "<dt>Finished</dt><dd>\(time) UTC</dd>" } ?? ""
        let last: Markup =
            (detail.lastStatusCode.map { "HTTP \($0)" } ?? detail.lastError).map { (text: String) -> Markup in
                "<dt>Last result</dt><dd>\(text)</dd>"
            } ?? ""
        return ConsoleLayout.page(
            title: "Event \(id)", context: context, notice: notice,
            """
            <h1>Event <span class="mono">\(id)</span></h1>
            <dl class="facts"><dt>Number</dt><dd>#\(event.id)</dd><dt>Status</dt><dd id="status">\(ConsoleLayout.statusBadge(detail.status, leased: detail.leasedBy != nil))</dd>\
            <dt>Trigger</dt><dd><a href="\(ConsoleLinks.events(FilterForm(trigger: event.triggerName)))">\(event.triggerName)</a></dd>\
            <dt>Table</dt><dd>\(event.table.description)</dd><dt>Created</dt><dd>\(event.createdAt)</dd>\
            <dt>Attempts made</dt><dd>\(event.tries)</dd><dt>Next attempt</dt><dd>\(detail.status == "pending" ? detail.nextAttemptAt + " UTC" : "–")</dd>\
            \(finished)\(last)\(lease)</dl>
            \(actions)
            <h2>Payload as delivered</h2><pre id="payload">\(payload)</pre>
            <h2>Attempts (\(detail.attempts.count), newest first)</h2>\(attempts.isEmpty ? "<p class=\"muted\">None yet.</p>" as Markup : "")\(attempts)
            """)
    }

    /// The body receivers get (Hasura's envelope, built by the delivery code itself),
    /// indented. `current_retry` is that of the next attempt. Without the trigger's config
    /// the stored `event` object is shown instead.
    static func prettyPayload(event: ClaimedEvent, trigger: TriggerConfig?, id: String) -> String {
        var trigger = trigger
        if let route = trigger, route.schedule != nil {
            // A cron tick or one-off event: its scheduled time (and a one-off event's own
            // payload and comment) come from the stored event, as when it is sent.
            trigger = ScheduledEventDecoder.decode(
                event, route: route, now: Date(), environment: [:], leaseSeconds: Int(Int32.max)
            ).trigger
        }
        let body = trigger.map { DeliveryRequest.payload(event: event, trigger: $0, messageID: id) } ?? event.payload
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed]),
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return body }
        return String(decoding: data, as: UTF8.self)
    }
}
