import CCurl
import Testing

@testable import Herald

/// The hand-built header list curl reads: every line as `curl_slist_append` would make it,
/// in order, NUL-terminated, linked to the end; the body copied; the error buffer empty.
@Suite("Request block")
struct RequestBlockTests {
    func lines(_ block: RequestBlock) -> [String] {
        var lines: [String] = []
        var node = block.headers
        while let current = node {
            if let data = current.pointee.data { lines.append(String(cString: data)) }
            node = current.pointee.next
        }
        return lines
    }

    @Test func headersBodyAndErrorBufferShareOneBlock() {
        let headers = [
            DeliveryRequest.Header(name: "Content-Type", value: "application/json", isSecret: false),
            DeliveryRequest.Header(name: "webhook-id", value: "0b9d1c2e-aaaa-4bbb-8ccc-123456789abc", isSecret: false),
            DeliveryRequest.Header(name: "X-Ünïcode", value: "välue with spaces", isSecret: true),
            DeliveryRequest.Header(name: "X-Empty", value: "", isSecret: false),
        ]
        let body = Array(#"{"id":"x","event":{"data":{"new":{"a":1}}}}"#.utf8)
        let block = RequestBlock(headers: headers, extraLines: ["Expect:"], body: body)
        defer { block.deallocate() }
        #expect(
            lines(block) == [
                "Content-Type: application/json", "webhook-id: 0b9d1c2e-aaaa-4bbb-8ccc-123456789abc",
                "X-Ünïcode: välue with spaces", "X-Empty: ", "Expect:",
            ])
        #expect(Array(UnsafeRawBufferPointer(start: block.body, count: body.count)) == body)
        #expect(String(cString: block.errorBuffer).isEmpty)
        // curl writes up to CURL_ERROR_SIZE bytes there: the whole buffer belongs to it.
        block.errorBuffer.update(repeating: 65, count: Int(CURL_ERROR_SIZE) - 1)
        #expect(String(cString: block.errorBuffer).count == Int(CURL_ERROR_SIZE) - 1)
        #expect(lines(block).count == 5, "writing the error buffer must not touch the header lines")
        #expect(Array(UnsafeRawBufferPointer(start: block.body, count: body.count)) == body)
    }

    @Test func anEmptyBodyAndNoHeadersStillGiveValidPointers() {
        let block = RequestBlock(headers: [], body: [])
        defer { block.deallocate() }
        #expect(block.headers == nil)
        #expect(String(cString: block.errorBuffer).isEmpty)
    }

    @Test func aLargeBodyIsCopiedWhole() {
        let body = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let block = RequestBlock(
            headers: [DeliveryRequest.Header(name: "A", value: "b", isSecret: false)], extraLines: ["Expect:"], body: body)
        defer { block.deallocate() }
        #expect(Array(UnsafeRawBufferPointer(start: block.body, count: body.count)) == body)
        #expect(lines(block) == ["A: b", "Expect:"])
    }
}
