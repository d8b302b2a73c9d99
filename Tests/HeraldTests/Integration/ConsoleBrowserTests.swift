import Foundation
import Testing

/// The console in a real headless Chromium (Debian's `chromium`, driven by Playwright for
/// Python: Tests/browser/console_browser_test.py), against a real worker, database and
/// receiver. `scripts/test` installs both; the test fails, never skips, when they are missing.
@Suite("Console in a browser", .enabled(if: TestEnvironment.integrationEnabled))
struct ConsoleBrowserTests {
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../..").standardized
    }

    @Test func operatorFindsAFailedEventAndRedeliversItInABrowser() throws {
        let fixture = try ConsoleFixture()
        // README's screenshots are refreshed on request (HERALD_UPDATE_SCREENSHOTS=1), so a
        // test run does not leave the tree modified; otherwise they go to a temporary folder.
        let screenshots =
            TestEnvironment.variables["HERALD_UPDATE_SCREENSHOTS"] == "1"
            ? Self.root.appendingPathComponent("docs/screenshots").path
            : NSTemporaryDirectory() + "herald-screenshots-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: screenshots, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.root.appendingPathComponent("Tests/browser/console_browser_test.py").path]
        process.environment = ProcessInfo.processInfo.environment.merging([
            "HERALD_CONSOLE_URL": fixture.baseURL, "HERALD_CONSOLE_TOKEN": ConsoleFixture.token,
            "HERALD_RECEIVER_URL": fixture.receiver.url(""), "HERALD_FAILED_EVENT": try fixture.eventID(order: 1),
            "HERALD_SCRIPT_ORDER": "6", "HERALD_SCREENSHOTS": screenshots,
            "HERALD_LITERAL_SECRET": ConsoleFixture.literalSecret,
        ]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)\n--- worker log ---\n\(fixture.worker.log.suffix(4000))")
        #expect(text.contains("browser checks passed"), "\(text)")
        #expect(fixture.worker.log.contains("redeliver-all"), "audit line for the bulk redelivery")
    }
}
