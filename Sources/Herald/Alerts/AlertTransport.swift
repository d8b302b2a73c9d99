import CCurl
import CCurlShims
import Foundation

/// The alert sender's HTTP client: a libcurl multi handle driving one easy handle, so the
/// sending thread waits in `curl_multi_poll`, where ``wake()`` reaches it at once (a new
/// alert, shutdown), even in the middle of a request. Owns both handles and frees them in
/// `deinit`. Used only on the dispatcher's thread, except ``wake()``.
final class AlertTransport: @unchecked Sendable {
    private let multi: UnsafeMutableRawPointer
    private let easy: UnsafeMutableRawPointer
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    init() {
        _ = CurlTransfer.globalInit
        multi = curl_multi_init()
        easy = curl_easy_init()
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_multi_cleanup(multi)
        errorBuffer.deallocate()
    }

    /// Ends a ``sleep(_:)`` or a ``post(url:headers:body:timeout:shouldAbort:)`` turn now;
    /// any thread.
    func wake() {
        curl_multi_wakeup(multi)
    }

    /// Waits for `timeout` or until ``wake()``.
    func sleep(_ timeout: Duration) {
        var ready: Int32 = 0
        curl_multi_poll(multi, nil, 0, Int32(clamping: max(timeout.milliseconds, 0)), &ready)
    }

    /// POSTs `body` once. Returns nil without a result when `shouldAbort` turns true first
    /// (it is asked at least every 100 ms).
    func post(
        url: String, headers: [DeliveryRequest.Header], body: [UInt8], timeout: Duration, shouldAbort: () -> Bool
    ) -> AttemptResult? {
        curl_easy_reset(easy)
        errorBuffer.initialize(to: 0)
        herald_easy_setopt_string(easy, CURLOPT_URL, url)
        herald_easy_setopt_long(easy, CURLOPT_POST, 1)
        herald_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, max(timeout.milliseconds, 1))
        herald_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        herald_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        herald_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        herald_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        // The response body is not used; without a write callback curl prints it to stdout.
        herald_easy_setopt_write_callback(easy) { _, size, count, _ in size * count }

        var headerList: UnsafeMutablePointer<curl_slist>?
        for header in headers {
            headerList = curl_slist_append(headerList, "\(header.name): \(header.value)")
        }
        headerList = curl_slist_append(headerList, "Expect:")
        defer { curl_slist_free_all(headerList) }
        herald_easy_setopt_pointer(easy, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList))

        return body.withUnsafeBytes { bytes in
            herald_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress))
            herald_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bytes.count))
            let added = curl_multi_add_handle(multi, easy)
            guard added == CURLM_OK else {
                return .failure(.internal, message: String(cString: curl_multi_strerror(added)))
            }
            defer { curl_multi_remove_handle(multi, easy) }
            while true {
                var running: Int32 = 0
                curl_multi_perform(multi, &running)
                var left: Int32 = 0
                while let message = curl_multi_info_read(multi, &left) {
                    guard message.pointee.msg == CURLMSG_DONE else { continue }
                    return result(message.pointee.data.result)
                }
                if shouldAbort() { return nil }
                var ready: Int32 = 0
                // Short, so that `shouldAbort` is asked again soon even when nothing wakes us.
                curl_multi_poll(multi, nil, 0, 100, &ready)
            }
        }
    }

    private func result(_ code: CURLcode) -> AttemptResult {
        if code == CURLE_OK {
            var status = 0
            herald_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            return .response(status: status, retryAfter: nil)
        }
        let detail = String(cString: errorBuffer)
        return .failure(CurlTransfer.classify(code), message: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)
    }
}
