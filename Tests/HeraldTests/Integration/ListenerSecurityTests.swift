import Foundation
import Testing

/// The worker's token-less loopback listener against requests a DNS-rebinding page would send.
@Suite("Listener security", .enabled(if: TestEnvironment.integrationEnabled))
struct ListenerSecurityTests {
    @Test func tokenlessListenerAnswersOnlyLoopbackHostNames() throws {
        let receiver = try Receiver()
        let port = try freePort()
        let fixture = try WorkerFixture(webhook: receiver.url("/ok"))
        let yaml = try String(contentsOfFile: fixture.configPath, encoding: .utf8)
            .replacingOccurrences(of: #"stats: {listen: ""}"#, with: "stats: {listen: '127.0.0.1:\(port)'}")
        let path = try temporaryFile(yaml)
        let worker = try WorkerProcess(configPath: path)
        defer { _ = worker.terminate() }
        let base = "http://127.0.0.1:\(port)"
        #expect(try eventually { try httpGet("\(base)/healthz").status == 200 }, "\(worker.log)")
        for path in ["/stats", "/metrics", "/readyz", "/console", "/console/events"] {
            let rebound = try httpGet("\(base)\(path)", headers: ["Host: 127.0.0.1.evil.example:\(port)"])
            #expect(rebound.status == 421, "\(path) answered \(rebound.status) to a rebinding Host")
            #expect(!rebound.body.contains("csrf"))
            #expect(try httpGet("\(base)\(path)", headers: ["Host: localhost:\(port)"]).status != 421)
        }
        #expect(try httpGet("\(base)/stats", headers: ["Host: [::1]:\(port)"]).status == 200)
        #expect(try httpGet("\(base)/stats").status == 200)
    }

    @Test func reflectedParametersStayInsideTheirAttributeEvenWithCombiningMarks() throws {
        let receiver = try Receiver()
        let port = try freePort()
        let fixture = try WorkerFixture(webhook: receiver.url("/ok"))
        let yaml = try String(contentsOfFile: fixture.configPath, encoding: .utf8)
            .replacingOccurrences(
                of: #"stats: {listen: ""}"#, with: "stats: {listen: '127.0.0.1:\(port)', bearer_token_env: CONSOLE_TOKEN}")
        let path = try temporaryFile(yaml)
        let worker = try WorkerProcess(configPath: path, environment: ["CONSOLE_TOKEN": "t0ken-secret"])
        defer { _ = worker.terminate() }
        let base = "http://127.0.0.1:\(port)"
        #expect(try eventually { try httpGet("\(base)/healthz").status == 200 }, "\(worker.log)")
        for attack in ["%22%CC%81%20autofocus%20onfocus%3Dalert(1)", "%27%CC%88%20onmouseover%3Dx", "%3C%CC%B8script%3E"] {
            let page = try httpGet("\(base)/console/login?next=%2Fconsole\(attack)")
            #expect(page.status == 200)
            // Built apart from #expect: its expansion cannot quote a quote followed by a combining mark.
            let breakouts = ["\u{22}\u{301} autofocus", "\u{27}\u{308} onmouseover", "\u{3C}\u{338}script"]
            let broken = breakouts.filter { page.body.contains($0) }
            #expect(broken.isEmpty, "an attribute or element was broken out of")
        }
    }
}
