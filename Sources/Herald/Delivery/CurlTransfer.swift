import CCurl
import CCurlShims
import Foundation

/// One HTTP request in flight (a POST unless a request transform names another method):
/// owns one allocation holding its header list, its error buffer and its body (see
/// ``RequestBlock``), freed in `deinit`. The curl easy handle is lent by the deliverer's
/// ``CurlHandlePool`` and returned after the transfer. Used only on the deliverer's thread.
final class CurlTransfer {
    let handle: UnsafeMutableRawPointer
    let job: DeliveryJob
    let request: DeliveryRequest
    let startedAt: ContinuousClock.Instant
    private let block: RequestBlock

    /// The response body, up to `responseLimit` bytes; the rest is counted, not kept.
    private(set) var response: [UInt8] = []
    private let responseLimit: Int
    /// The `webhook-delivery` response header, when the receiver sent one (read by
    /// ``result(_:)``).
    private(set) var deliveryHeader: String?

    static let globalInit: Void = {
        // CURL_GLOBAL_ALL; must run once before any other curl call, on one thread.
        _ = curl_global_init(3)
    }()

    /// `startedAt`: when the deliverer's turn that starts it began (one clock read per turn,
    /// not per transfer; the difference is the turn's own microseconds).
    init(
        handle: UnsafeMutableRawPointer, job: DeliveryJob, request: DeliveryRequest, responseLimit: Int,
        startedAt: ContinuousClock.Instant = .now
    ) {
        self.handle = handle
        self.job = job
        self.request = request
        self.responseLimit = responseLimit
        self.startedAt = startedAt
        // curl would otherwise wait for "100 Continue" before sending bodies over 1 MiB.
        block = RequestBlock(headers: request.headers, extraLines: ["Expect:"], body: request.body)
        configure()
    }

    deinit {
        block.deallocate()
    }

    /// Sets every option that differs between transfers. Handles are reused without
    /// `curl_easy_reset` (see ``CurlHandlePool``), so each of these is set on every transfer,
    /// the method ones included, whatever the handle's last transfer set.
    private func configure() {
        // withCString, not the implicit String-to-pointer conversion: that one copies the
        // string into a new array on every call (one allocation per request).
        request.url.withCString { herald_easy_setopt_string(handle, CURLOPT_URL, $0) }
        if request.sendsBody {
            herald_easy_setopt_long(handle, CURLOPT_POST, 1)
            herald_easy_setopt_pointer(handle, CURLOPT_POSTFIELDS, block.body)
            herald_easy_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count))
        } else {
            // No body at all: not even "Content-Length: 0", which a GET must not carry.
            herald_easy_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, -1)
            herald_easy_setopt_long(handle, CURLOPT_HTTPGET, 1)
        }
        if request.method != .POST || !request.sendsBody {
            // The method named on the request line; curl keeps the body decision above.
            request.method.rawValue.withCString { herald_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, $0) }
        } else {
            herald_easy_setopt_pointer(handle, CURLOPT_CUSTOMREQUEST, nil)
        }
        // The whole request, connect to last byte; time queued in Herald does not count
        // because a transfer is only created when a slot is free.
        herald_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, job.timeoutMilliseconds)
        herald_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, block.errorBuffer)
        herald_easy_setopt_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(block.headers))

        let context = Unmanaged.passUnretained(self).toOpaque()
        herald_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
    }

    /// The options every transfer shares, set once when a handle is made.
    static func configureOnce(_ handle: UnsafeMutableRawPointer) {
        herald_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
        herald_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        herald_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        herald_easy_setopt_long(handle, CURLOPT_TCP_NODELAY, 1)
        herald_easy_setopt_write_callback(handle) { data, size, count, context in
            guard let data, let context else { return 0 }
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
            transfer.receive(UnsafeRawBufferPointer(start: data, count: size * count))
            return size * count
        }
        // No header callback: the two headers Herald acts on are read from curl's own store
        // when the transfer ends (``result(_:)``), not by a call into Swift per header line.
    }

    private func receive(_ bytes: UnsafeRawBufferPointer) {
        let take = min(responseLimit - response.count, bytes.count)
        // A buffer pointer, not a slice of one: appended with one copy, not byte by byte.
        if take > 0 { response.append(contentsOf: UnsafeRawBufferPointer(start: bytes.baseAddress, count: take)) }
    }

    /// The last value of response header `name` in the final response (after any 1xx),
    /// trimmed; nil when the receiver did not send it.
    /// `name` is a static string: a String would be copied into a new C array per call.
    private func responseHeader(_ name: StaticString) -> String? {
        let cName = UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
        var found: UnsafeMutablePointer<curl_header>?
        guard curl_easy_header(handle, cName, 0, UInt32(CURLH_HEADER), -1, &found) == CURLHE_OK, var header = found
        else { return nil }
        if header.pointee.amount > 1,
            curl_easy_header(handle, cName, header.pointee.amount - 1, UInt32(CURLH_HEADER), -1, &found) == CURLHE_OK,
            let last = found
        {
            header = last
        }
        guard let value = header.pointee.value else { return nil }
        return String(cString: value).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// What the finished transfer observed, given curl's result code.
    func result(_ code: CURLcode) -> AttemptResult {
        // A receiver may say "disable" with any status, even on a transfer that then failed.
        deliveryHeader = responseHeader("webhook-delivery")
        if code == CURLE_OK {
            var status = 0
            herald_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
            // Retry-After only ever delays a retry: a 2xx has none.
            let retryAfter = (200..<300).contains(status) ? nil : responseHeader("Retry-After")
            return .response(status: status, retryAfter: retryAfter)
        }
        let detail = String(cString: block.errorBuffer)
        let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        return .failure(Self.classify(code), message: message)
    }

    static func classify(_ code: CURLcode) -> DeliveryErrorClass {
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return .timeout
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return .dns
        case CURLE_COULDNT_CONNECT, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING:
            return .connection
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND:
            return .tls
        case CURLE_OUT_OF_MEMORY, CURLE_FAILED_INIT, CURLE_BAD_FUNCTION_ARGUMENT:
            return .internal
        default:
            return .protocol
        }
    }
}

/// Idle curl easy handles for reuse: a handle is configured once with the options every
/// transfer shares, and given back without `curl_easy_reset` (which frees and sets anew every
/// option: a visible share of the delivery thread), since each transfer sets all the
/// options that vary (``CurlTransfer``). Owns them and frees them in `deinit`. Deliverer
/// thread only.
final class CurlHandlePool {
    private var idle: [UnsafeMutableRawPointer] = []
    private let capacity: Int

    init(capacity: Int) {
        _ = CurlTransfer.globalInit
        self.capacity = capacity
    }

    deinit {
        idle.forEach { curl_easy_cleanup($0) }
    }

    func take() -> UnsafeMutableRawPointer? {
        if let handle = idle.popLast() { return handle }
        guard let handle = curl_easy_init() else { return nil }
        CurlTransfer.configureOnce(handle)
        return handle
    }

    func giveBack(_ handle: UnsafeMutableRawPointer) {
        if idle.count < capacity {
            idle.append(handle)
        } else {
            curl_easy_cleanup(handle)
        }
    }
}
