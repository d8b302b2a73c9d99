import Foundation
import Hummingbird

@testable import Herald

let auth = ConsoleAuth(token: Secret("fuzz-console-token"), listenerIsLoopback: false, secureCookie: false)

/// One input is a request's parts, separated by NUL bytes: the query string, a form body and
/// a Cookie header, each read the way the console reads it. Beyond not crashing, decoding
/// what the console encodes must give the fields back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConsole(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let parts = UnsafeBufferPointer(start: data, count: size).split(separator: 0, omittingEmptySubsequences: false)
        .map { String(decoding: $0, as: UTF8.self) }
    let query = parts.first ?? ""
    let body = parts.count > 1 ? parts[1] : ""
    let cookieHeader = parts.count > 2 ? parts[2] : ""

    let fields = FormCoding.decode(query)
    let form = FilterForm(fields: fields)
    _ = try? form.filter()
    _ = Console.notice(fields)
    _ = Console.safeNext(fields["next"] ?? "")
    _ = fields["before"].flatMap(Int64.init)
    let reread = FilterForm(fields: FormCoding.decode(form.query))
    precondition(reread == form, "filter form does not survive encoding: \(form) → \(form.query) → \(reread)")
    _ = Markup.escape(query)

    let posted = FormCoding.decode(body)
    _ = auth.acceptsLogin(posted["token"] ?? "")

    let cookies = Cookies(from: [cookieHeader])
    if let session = cookies[ConsoleAuth.cookieName]?.value {
        // What the console checks before a session costs a database lookup, then the hash
        // that lookup uses; a session's own CSRF token must be accepted, any other text not
        // unless it is that token.
        if ConsoleAuth.isWellFormedSessionID(session) {
            precondition(auth.sessionHash(session).utf8.count == 64, "session hash is not 32 bytes of hex")
        }
        let csrf = auth.csrfToken(for: .session(session))
        precondition(auth.allowsPost(from: .session(session), csrf: csrf), "a session's own CSRF token is refused")
        _ = auth.allowsPost(from: .session(session), csrf: posted["csrf"])
    }
    return 0
}
