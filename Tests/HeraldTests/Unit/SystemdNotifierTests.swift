import Foundation
import Testing

@testable import Herald

@Suite("sd_notify")
struct SystemdNotifierTests {
    @Test func sendsDatagramsToNotifySocket() throws {
        let socket = try NotifySocket()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.path])
        notifier.ready()
        notifier.status("delivered 3")
        notifier.stopping()
        #expect(socket.receive() == "READY=1")
        #expect(socket.receive() == "STATUS=delivered 3")
        #expect(socket.receive() == "STOPPING=1")
    }

    @Test func watchdogIntervalIsHalfOfWatchdogUsecForThisProcessOnly() {
        let mine = SystemdNotifier(environment: ["WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "\(getpid())"])
        #expect(mine.watchdogInterval == .seconds(5))
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"]).watchdogInterval == nil)
        #expect(SystemdNotifier(environment: [:]).watchdogInterval == nil)
        #expect(!SystemdNotifier(environment: [:]).isEnabled)
    }

    @Test func unitFileVerifies() throws {
        let unit = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../config/herald.service").standardized
        let text = try String(contentsOf: unit, encoding: .utf8)
        for required in [
            "Type=notify", "WatchdogSec=", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
            "ProtectHome=yes", "PrivateTmp=yes", "EnvironmentFile=-/etc/herald/herald.env", "User=herald",
            "ExecStart=/usr/local/bin/herald run --config /etc/herald/herald.yaml",
        ] {
            #expect(text.contains(required), "missing \(required)")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else { return }
        // verify checks that ExecStart exists: point it at the binary just built.
        let copy = try temporaryFile(
            text.replacingOccurrences(of: "/usr/local/bin/herald", with: TestEnvironment.heraldExecutable.path),
            suffix: ".service")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        process.arguments = ["verify", copy]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.isEmpty, "\(output)")
    }
}
