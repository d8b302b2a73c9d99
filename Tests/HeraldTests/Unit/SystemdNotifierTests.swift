import Foundation
import Testing

@testable import Herald

@Suite("sd_notify")
struct SystemdNotifierTests {
    /// A datagram socket bound to a fresh path, standing in for systemd.
    final class NotifySocket {
        let path = NSTemporaryDirectory() + "herald-notify-\(UUID().uuidString.prefix(8)).sock"
        let descriptor: Int32

        init() throws {
            descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard bound == 0 else { throw ReceiverError(message: "bind failed") }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit {
            close(descriptor)
            unlink(path)
        }

        /// The next datagram, or nil after the 5 s receive timeout.
        func receive() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(descriptor, &buffer, buffer.count, 0)
            return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
        }
    }

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
