import ArgumentParser
import Foundation
import Herald
import ServiceLifecycle

/// `herald disable-trigger` and `enable-trigger` share their arguments and effect.
struct DisableTriggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable-trigger",
        abstract: "Stop delivering a trigger's events on every worker; they stay pending until enable-trigger.")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "Trigger name.")
    var name: String

    @Option(help: "Why, shown by `herald triggers` and in the alert.")
    var reason: String?

    func run() async throws {
        try await setTriggerState(options: options, name: name, enabled: false, reason: reason ?? "disabled by an operator")
    }
}

struct EnableTriggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable-trigger",
        abstract: "Deliver a disabled trigger's events again (workers pick it up at once).")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "Trigger name.")
    var name: String

    func run() async throws {
        try await setTriggerState(options: options, name: name, enabled: true, reason: "enabled by an operator")
    }
}

private func setTriggerState(options: GlobalOptions, name: String, enabled: Bool, reason: String) async throws {
    try await reportingErrors {
        let config = try options.loadSourceConfig()
        guard config.trigger(named: name) != nil else {
            throw CLIFailure(message: "trigger '\(name)' is not in \(config.file)")
        }
        let user = ProcessInfo.processInfo.environment["USER"] ?? "unknown"
        // On a Citus coordinator every node's claimers read their own node's state.
        // Every node reachable first: a node down changes none, not half of them.
        let admins = try options.loadNodeConfigs(logger: options.makeLogger()).map {
            try TriggerAdmin(connection: PGConnection(url: $0.database.url))
        }
        var changed = false
        for admin in admins {
            let here = try admin.setEnabled(name, enabled: enabled, reason: reason, by: "herald CLI (\(user))")
            changed = changed || here
        }
        let state = enabled ? "enabled" : "disabled"
        print(changed ? "trigger \(name) \(state)" : "trigger \(name) was already \(state)")
        if changed {
            let by = "herald CLI (\(user))"
            await sendOperatorAlert(
                options: options, config: config,
                enabled ? .triggerEnabled(trigger: name, reason: reason, by: by)
                    : .triggerDisabled(trigger: name, reason: reason, by: by))
        }
    }
}

struct TriggersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "triggers",
        abstract: "List each trigger's state, circuit breaker, rate limit and pending events.")

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let config = try options.loadSourceConfig()
            let connection = try PGConnection(url: config.database.url)
            let drift = try TriggerInstaller(config: config, logger: options.makeLogger()).drift(connection)
            let rows = try TriggerAdmin(connection: connection).list(config, drift: drift)
            // Each disagreement with its fix, including installed triggers no row shows.
            drift.findings.forEach { printError("warning: \($0.line)") }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(rows), as: UTF8.self))
            } else {
                print(TriggerAdmin.table(rows))
            }
        }
    }
}

/// Operator changes are alerted from here (a worker alerts for the changes it makes). The
/// dispatcher runs just long enough to send this one alert: its graceful shutdown makes one
/// attempt at what is queued, within a few seconds.
private func sendOperatorAlert(options: GlobalOptions, config: HeraldConfig, _ alert: Alert) async {
    guard let alertsConfig = config.alerts else { return }
    let logger = options.makeLogger()
    let dispatcher = AlertDispatcher(config: alertsConfig, redactor: Redactor(config: config), logger: logger)
    let group = ServiceGroup(services: [dispatcher], logger: logger)
    dispatcher.emit(alert)
    async let running: Void? = try? group.run()
    await group.triggerGracefulShutdown()
    _ = await running
    if dispatcher.counts.sent == 0 {
        printError("warning: the \(alert.type) alert could not be sent to \(alertsConfig.displayWebhook)")
    }
}
