import Foundation
import Testing

@testable import Herald

@Suite("Security: names and escaping")
struct SecurityUnitTests {
    @Test(arguments: ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "127.255.255.255", "::1"])
    func loopbackNamesAreLoopback(host: String) {
        #expect(LoopbackName.isLoopback(host: host))
    }

    @Test(arguments: [
        "127.0.0.1.evil.example", "127.evil.example", "127.0.0.1x", "127.0.0", "127.0.0.256", "128.0.0.1", "0127.0.0.1",
        "localhost.evil.example", "evil-localhost", "", "::2", "127.0.0.1:80",
    ])
    func namesThatOnlyLookLikeLoopbackAreNot(host: String) {
        #expect(!LoopbackName.isLoopback(host: host))
    }

    @Test func consoleHostCheckTakesExactLoopbackNamesOnly() {
        #expect(ConsoleAuth.isLoopbackHost("127.0.0.1:9464"))
        #expect(ConsoleAuth.isLoopbackHost("[::1]:9464"))
        #expect(ConsoleAuth.isLoopbackHost("localhost:9464"))
        #expect(!ConsoleAuth.isLoopbackHost("127.0.0.1.evil.example:9464"))
        #expect(!StatsListenAddress("127.0.0.1.evil.example:9464")!.isLoopback)
    }

    @Test(arguments: [
        "\u{22}\u{301} autofocus onfocus=alert(1)", "\u{27}\u{308}x", "\u{3C}\u{338}script>", "&\u{300}amp;", "a\u{22}b'c<d>e&f",
    ])
    func escapingLeavesNoQuoteOrBracketEvenWithCombiningMarks(input: String) {
        let escaped = Markup.escape(input)
        #expect(!escaped.unicodeScalars.contains { ["\u{22}", "\u{27}", "\u{3C}", "\u{3E}"].contains($0) })
        // Every ampersand starts an entity (compared by scalars: a combining mark after the
        // entity's ';' would make one Character of the two).
        let entities = ["amp;", "lt;", "gt;", "quot;", "#39;"].map { Array($0.unicodeScalars) }
        let pieces = escaped.unicodeScalars.split(separator: "&", omittingEmptySubsequences: false).dropFirst()
        #expect(pieces.allSatisfy { piece in entities.contains { piece.starts(with: $0) } })
    }
}
