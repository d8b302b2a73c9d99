/// `/console`: per trigger, the queue as the database sees it and the last hour's attempts.
enum OverviewPage {
    static func render(
        queue: QueueStats, throughput: [String: EventBrowser.Throughput],
        states: [String: EventBrowser.TriggerState] = [:], triggers: [TriggerConfig], streamClients: [String: Int] = [:],
        nodes: [NodeLog] = [], context: PageContext
    ) -> Markup {
        let rows: [Markup] = queue.triggers.map { trigger in
            let configured = triggers.first { $0.name == trigger.trigger }
            let events = FilterForm(trigger: trigger.trigger)
            let failed = FilterForm(trigger: trigger.trigger, status: "failed")
            let pending = FilterForm(trigger: trigger.trigger, status: "pending")
            // Not configured (its events wait, never dropped), disabled (by whom and why, from
            // herald.trigger_state), a circuit breaker a worker reported open, or active.
            let target: String = configured.map {
                "\($0.table) → \($0.displayWebhook)" + ($0.batch == nil || $0.pullConsumer != nil ? "" : " (\(TriggerAdmin.delivery(of: $0)))")
            } ?? ""
            let readers = streamClients[trigger.trigger].map { " · \($0) stream client\($0 == 1 ? "" : "s")" } ?? ""
            let stored = states[trigger.trigger] ?? EventBrowser.TriggerState()
            let state: Markup
            if configured == nil {
                state = "<span class=\"badge failed\">not configured</span>"
            } else if !stored.enabled {
                state = "<span class=\"badge failed\" title=\"\(stored.reason ?? "")\">disabled</span>"
            } else if stored.circuit != "closed" {
                state = "<span class=\"badge failed\">breaker \(stored.circuit == "open" ? "open" : "half-open")</span>"
            } else {
                state = "active"
            }
            return """
                <tr data-trigger="\(trigger.trigger)"><td><a href="\(ConsoleLinks.events(events))">\(trigger.trigger)</a>\
                <div class="muted">\(target)\(readers)</div></td>\
                <td>\(state)</td>\
                <td class="num" data-count="pending"><a href="\(ConsoleLinks.events(pending))">\(trigger.pending)</a></td>\
                <td class="num" data-count="in_flight">\(trigger.inFlight)</td>\
                <td class="num" data-count="delivered">\(trigger.deliveredIsEstimate ? "≈ " : "")\(trigger.delivered)</td>\
                <td class="num" data-count="failed"><a href="\(ConsoleLinks.events(failed))">\(trigger.failed)</a></td>\
                <td class="num">\(ConsoleLayout.age(trigger.oldestPendingAgeSeconds))</td>\
                <td class="num" data-count="failures_last_hour">\(trigger.failuresLastHour)</td>\
                <td>\(ThroughputChart.svg(throughput[trigger.trigger]))</td></tr>
                """
        }
        let errors: [Markup] = queue.triggers.compactMap { trigger in
            guard let error = trigger.lastError else { return nil }
            let what = error.statusCode.map { "HTTP \($0)" } ?? error.errorClass ?? "error"
            // The recorder's message for an HTTP failure is often just "HTTP 500" again.
            let message = error.message == what ? "" : error.message ?? ""
            return "<li><strong>\(trigger.trigger)</strong> \(error.at): \(what) \(message)</li>"
        }
        let lastErrors: Markup = errors.isEmpty ? "" : "<h2>Last error per trigger</h2><ul>\(errors)</ul>"
        let estimated: Markup =
            queue.triggers.contains(where: \.deliveredIsEstimate)
            ? "<p class=\"muted\">≈ delivered is estimated from the planner's statistics: the log holds more than \(QueueStats.exactCountLimit) events, and counting them all would take longer than the page should. Pending, in flight and failed are exact.</p>"
            : ""
        return ConsoleLayout.page(
            title: "Overview", context: context,
            """
            <h1>Overview</h1>
            <table id="overview"><thead><tr><th>Trigger</th><th>State</th><th class="num">Pending</th>\
            <th class="num">In flight</th><th class="num">Delivered</th><th class="num">Failed events</th>\
            <th class="num">Oldest pending</th>\
            <th class="num" title="attempts without a 2xx in the last hour, retries included">Failed attempts 1h</th><th>Attempts per minute, last hour</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            \(estimated)\(lastErrors)\(nodeTable(nodes))
            """)
    }

    /// A Citus worker node's log, as the overview lists it (the table above is the
    /// coordinator's): nil counts when the node cannot be read now.
    struct NodeLog: Sendable {
        var name: String
        var counts: [String: Int]?
    }

    private static func nodeTable(_ nodes: [NodeLog]) -> Markup {
        guard !nodes.isEmpty else { return "" }
        let rows: [Markup] = nodes.map { node in
            let link = { (status: String) -> String in ConsoleLinks.events(FilterForm(status: status, node: node.name)) }
            guard let counts = node.counts else {
                return "<tr><td>\(node.name)</td><td colspan=\"2\">cannot be read now</td></tr>"
            }
            return """
                <tr data-node="\(node.name)"><td><a href="\(ConsoleLinks.events(FilterForm(node: node.name)))">\(node.name)</a></td>\
                <td class="num"><a href="\(link("pending"))">\(counts["pending"] ?? 0)</a></td>\
                <td class="num"><a href="\(link("failed"))">\(counts["failed"] ?? 0)</a></td></tr>
                """
        }
        return """
            <h2>Citus worker nodes</h2>
            <table id="nodes"><thead><tr><th>Node's log</th><th class="num">Pending</th>\
            <th class="num">Failed events</th></tr></thead><tbody>\(rows)</tbody></table>
            """
    }
}
