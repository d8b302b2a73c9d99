import Foundation

/// `/console/events/{id}`: the payload as delivered, every attempt, and the actions.
enum EventPage {
    static func render(
        detail: EventBrowser.Detail, trigger: TriggerConfig?, id: String, context: PageContext, notice: String?
    ) -> Markup {
        let event = detail.event
        let shown = shownPayload(detail)
        var sentEvent = event
        sentEvent.tries = shown.tries
        let payload = prettyPayload(event: sentEvent, trigger: trigger, id: id)
        let rounds = redeliveryMarks(detail.attempts.map(\.attempt))
        let transformed: Markup =
            transformedRequest(event: event, trigger: trigger, id: id).map { (text: String) -> Markup in
                "<h2>Request as sent (after request_transform)</h2><pre id=\"transformed-request\">\(text)</pre>"
            } ?? ""
        let attempts: [Markup] = zip(detail.attempts, rounds).reversed().map { attempt, redelivered in
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
            let marker: Markup = redelivered ? "<span class=\"badge redelivered\">after redelivery</span> " : ""
            // The envelope's retry fields as this attempt sent them (current_retry counts the
            // attempts before it, and restarts at 0 after a redelivery).
            let deliveryInfo: Markup =
                trigger.map { (trigger: TriggerConfig) -> Markup in
                    """
                    <p class="mono delivery-info">delivery_info: {"current_retry": \(attempt.attempt - 1), \
                    "max_retries": \(trigger.retry.numRetries)}</p>
                    """
                } ?? ""
            return """
                <section class="attempt" data-attempt="\(attempt.attempt)"><h3>\(marker)Attempt \(attempt.attempt) · \
                \(ConsoleLayout.statusBadge(ok ? "delivered" : "failed")) \(outcome) · \(String(format: "%.1f", attempt.durationMs)) ms · \
                <span class="muted">\(attempt.at) UTC</span></h3>\(deliveryInfo)\(message)
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
            <h2 id="payload-title">\(shown.title)</h2><pre id="payload">\(payload)</pre>\(transformed)
            <h2>Attempts (\(detail.attempts.count), newest first)</h2>\(attempts.isEmpty ? "<p class=\"muted\">None yet.</p>" as Markup : "")\(attempts)
            """)
    }

    /// Which payload the page shows, and its heading: a pending event's next attempt, else
    /// what its last attempt sent. The event's `tries` counts the attempts made, so building
    /// the envelope from it after the last one would show a `current_retry` no request carried.
    static func shownPayload(_ detail: EventBrowser.Detail) -> (title: String, tries: Int) {
        if detail.status == "pending" {
            return ("Payload the next attempt sends (attempt \(detail.event.tries + 1))", detail.event.tries)
        }
        guard let last = detail.attempts.last else { return ("Payload (never sent)", detail.event.tries) }
        return ("Payload as sent on the last attempt (attempt \(last.attempt))", last.attempt - 1)
    }

    /// For attempts in the order they were made, whether each is the first after a
    /// redelivery: a redelivery resets the attempt count, so an attempt numbered no higher
    /// than the one before it started a new round.
    static func redeliveryMarks(_ attempts: [Int]) -> [Bool] {
        attempts.indices.map { $0 > 0 && attempts[$0] <= attempts[$0 - 1] }
    }

    /// The body receivers get (Hasura's envelope, built by the delivery code itself),
    /// indented; `current_retry` is the event's `tries`. Without the trigger's config the
    /// stored `event` object is shown instead.
    static func prettyPayload(event: ClaimedEvent, trigger: TriggerConfig?, id: String) -> String {
        let trigger = trigger.map { sentTrigger(event: event, route: $0) }
        let body = trigger.map { DeliveryRequest.payload(event: event, trigger: $0, messageID: id) } ?? event.payload
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed]),
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return body }
        return String(decoding: data, as: UTF8.self)
    }

    /// For a trigger with a `request_transform`: the request its next attempt sends, as
    /// `herald preview-request` prints it (secrets redacted); nil for other triggers.
    static func transformedRequest(event: ClaimedEvent, trigger: TriggerConfig?, id: String) -> String? {
        guard let route = trigger, route.requestTransform != nil else { return nil }
        let trigger = sentTrigger(event: event, route: route)
        let body = Array(DeliveryRequest.payload(event: event, trigger: trigger, messageID: id).utf8)
        let prepared = DeliveryRequest.Prepared(payload: body, trigger: trigger, messageID: id)
        return RequestPreview(prepared: prepared, trigger: trigger, timestamp: Int(Date().timeIntervalSince1970)).text
    }

    /// The trigger an event is sent with: a cron tick or one-off event takes its scheduled
    /// time (and a one-off event its own payload and comment) from the stored event.
    private static func sentTrigger(event: ClaimedEvent, route: TriggerConfig) -> TriggerConfig {
        guard route.schedule != nil else { return route }
        return ScheduledEventDecoder.decode(event, route: route, now: Date(), environment: [:], leaseSeconds: Int(Int32.max))
            .trigger
    }
}
