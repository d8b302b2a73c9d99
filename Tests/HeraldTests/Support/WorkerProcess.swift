import Foundation

/// `herald run` (or another long-running command, such as `herald console`) as a child
/// process, so tests can SIGTERM and SIGKILL it like systemd would.
final class WorkerProcess: @unchecked Sendable {
    let process = Process()
    let logPath: String

    /// `/readyz` of the worker's stats listener, when started with `readiness: true`.
    let readinessURL: String?

    /// `readiness: true` gives the worker a stats listener on a free loopback port (unless
    /// the environment names one), so ``waitUntilStarted(timeout:)`` waits for `/readyz`:
    /// 200 only once the claimer has connected and LISTENs.
    init(configPath: String, environment: [String: String] = [:], command: [String] = ["run"], readiness: Bool = false)
        throws
    {
        logPath = NSTemporaryDirectory() + "herald-worker-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = TestEnvironment.heraldExecutable
        process.arguments = command + ["--config", configPath, "--log-level", "debug"]
        var environment = environment
        if readiness {
            let listen = try environment["HERALD_STATS_LISTEN"] ?? "127.0.0.1:\(freePort())"
            environment["HERALD_STATS_LISTEN"] = listen
            readinessURL = "http://\(listen)/readyz"
        } else {
            readinessURL = nil
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let log = FileHandle(forWritingAtPath: logPath)
        process.standardError = log
        process.standardOutput = log
        try process.run()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends SIGTERM and waits for the exit status.
    func terminate(timeout: Double = 30) -> Int32? {
        kill(process.processIdentifier, SIGTERM)
        return waitForExit(timeout: timeout)
    }

    func killHard() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func waitForExit(timeout: Double) -> Int32? {
        guard eventually(timeout: timeout, { !process.isRunning }) else { return nil }
        return process.terminationStatus
    }
}

/// Test defaults (fast polling, frequent stats lines) with `overrides` ("key: value, …") on top.
private func workerSettings(_ overrides: String) -> String {
    var settings: [(String, String)] = [
        ("fetch_interval_ms", "100"), ("recorder_flush_interval_ms", "5"), ("stats_log_interval_seconds", "1"),
        ("lease_seconds", "30"),
    ]
    for pair in overrides.split(separator: ",") {
        let parts = pair.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2 else { continue }
        settings.removeAll { $0.0 == parts[0] }
        settings.append((parts[0], parts[1]))
    }
    return settings.map { "\($0.0): \($0.1)" }.joined(separator: ", ")
}

/// YAML for a worker with one trigger on `table` (insert only) delivering to `webhook`.
func workerConfigYAML(
    databaseURL: String, webhook: String, table: String = "items", retry: String = "{num_retries: 0, interval_sec: 0, timeout_sec: 5}",
    worker: String = "", extraTrigger: String = ""
) -> String {
    """
    database: {url: '\(databaseURL)'}
    worker: {\(workerSettings(worker))}
    stats: {listen: ""}
    tables:
      - table: {schema: public, name: \(table)}
        event_triggers:
          - name: items_hook
            definition: {insert: {columns: "*"}, enable_manual: true}
            retry_conf: \(retry)
            webhook: \(webhook)
    \(extraTrigger)
    """
}
