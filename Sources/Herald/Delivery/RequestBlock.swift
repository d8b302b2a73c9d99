import CCurl

/// What curl reads from Herald during one transfer, in a single allocation: the header list
/// (curl_slist nodes linked here, each pointing at its NUL-terminated "Name: value" line in
/// the same block), curl's error buffer and the request body.
///
/// `curl_slist_append` makes two allocations per header (node and copied line) and the body
/// and error buffer two more: about fourteen mallocs and frees per request on the delivery
/// thread, the busiest in Herald, where allocation showed as a sixth of its profile. curl
/// only reads the list (`data` and `next`) and never frees one it was handed, so a list
/// built in place is a valid `CURLOPT_HTTPHEADER`.
///
/// Layout: `[curl_slist × n][error buffer][body][header lines]`, nodes first for alignment.
/// A value type holding a raw pointer: the owner (``CurlTransfer``) frees it once.
struct RequestBlock {
    /// The first node of the header list; nil when there are no headers.
    let headers: UnsafeMutablePointer<curl_slist>?
    /// `CURL_ERROR_SIZE` + 1 bytes, zeroed.
    let errorBuffer: UnsafeMutablePointer<CChar>
    /// The body's bytes (at least one byte is reserved so the pointer is never null).
    let body: UnsafeMutableRawPointer
    private let base: UnsafeMutableRawPointer

    static let errorBufferSize = Int(CURL_ERROR_SIZE) + 1

    /// `headers` are sent in order as "name: value", then each of `extraLines` as it is.
    init(headers: [DeliveryRequest.Header], extraLines: [StaticString] = [], body content: [UInt8]) {
        let count = headers.count + extraLines.count
        let nodeBytes = count * MemoryLayout<curl_slist>.stride
        var lineBytes = 0
        for header in headers { lineBytes += header.name.utf8.count + 2 + header.value.utf8.count + 1 }
        for line in extraLines { lineBytes += line.utf8CodeUnitCount + 1 }
        let bodyBytes = max(content.count, 1)
        let total = nodeBytes + Self.errorBufferSize + bodyBytes + lineBytes
        base = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: MemoryLayout<curl_slist>.alignment)

        errorBuffer = (base + nodeBytes).bindMemory(to: CChar.self, capacity: Self.errorBufferSize)
        errorBuffer.initialize(repeating: 0, count: Self.errorBufferSize)
        let bodyStart = base + nodeBytes + Self.errorBufferSize
        body = bodyStart
        content.withUnsafeBytes { bytes in
            if let source = bytes.baseAddress { bodyStart.copyMemory(from: source, byteCount: bytes.count) }
        }

        let nodes = base.bindMemory(to: curl_slist.self, capacity: count)
        var cursor = (bodyStart + bodyBytes).bindMemory(to: UInt8.self, capacity: lineBytes)
        var index = 0
        func link(_ write: (inout UnsafeMutablePointer<UInt8>) -> Void) {
            let line = cursor
            write(&cursor)
            cursor.initialize(to: 0)
            cursor += 1
            let next = index + 1 < count ? nodes + index + 1 : nil
            (nodes + index).initialize(
                to: curl_slist(data: UnsafeMutableRawPointer(line).assumingMemoryBound(to: CChar.self), next: next))
            index += 1
        }
        func copy(_ bytes: UnsafeRawBufferPointer, to cursor: inout UnsafeMutablePointer<UInt8>) {
            guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
            cursor.initialize(from: source.assumingMemoryBound(to: UInt8.self), count: bytes.count)
            cursor += bytes.count
        }
        for header in headers {
            link { cursor in
                var name = header.name
                name.withUTF8 { copy(UnsafeRawBufferPointer($0), to: &cursor) }
                cursor.initialize(to: UInt8(ascii: ":"))
                (cursor + 1).initialize(to: UInt8(ascii: " "))
                cursor += 2
                var value = header.value
                value.withUTF8 { copy(UnsafeRawBufferPointer($0), to: &cursor) }
            }
        }
        for line in extraLines {
            link { cursor in copy(UnsafeRawBufferPointer(start: line.utf8Start, count: line.utf8CodeUnitCount), to: &cursor) }
        }
        self.headers = count > 0 ? nodes : nil
    }

    /// Frees the block; nothing read from it may be used afterwards.
    func deallocate() {
        base.deallocate()
    }
}
