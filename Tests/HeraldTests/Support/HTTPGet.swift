import Foundation

/// A GET with curl (real HTTP, no mock), returning status and body.
func httpGet(_ url: String, headers: [String] = []) throws -> (status: Int, body: String) {
    try curl(["-m", "5"] + headers.flatMap { ["-H", $0] } + [url])
}

/// A JSON POST with curl, with a bearer token when given, returning status and body.
func httpPost(_ url: String, json: String, token: String?) throws -> (status: Int, body: String) {
    try curl(
        ["-m", "40", "-H", "Content-Type: application/json"] + (token.map { ["-H", "Authorization: Bearer \($0)"] } ?? [])
            + ["--data-binary", json, url])
}

private func curl(_ arguments: [String]) throws -> (status: Int, body: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}"] + arguments
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard let newline = text.lastIndex(of: "\n") else { return (0, "") }
    return (Int(text[text.index(after: newline)...]) ?? 0, String(text[..<newline]))
}

/// A loopback port nothing listens on right now.
func freePort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Parses Prometheus text exposition with the reference Python parser (prometheus_client)
/// and returns {family: {"type": t, "samples": [[name, labels, value]]}}.
func parsePrometheus(_ text: String) throws -> [String: [String: Any]] {
    let path = try temporaryFile(text, suffix: ".prom")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
        "python3", "-c",
        """
        import json, sys
        from prometheus_client.parser import text_string_to_metric_families
        out = {}
        for family in text_string_to_metric_families(open(sys.argv[1]).read()):
            out[family.name] = {"type": family.type, "samples": [[s.name, s.labels, s.value] for s in family.samples]}
        print(json.dumps(out))
        """, path,
    ]
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0,
        let parsed = try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]]
    else { throw ReceiverError(message: "Prometheus text did not parse: \(errors)") }
    return parsed
}

/// An HTTP request with curl (real HTTP), returning the status, the redirect target, the
/// response headers (lower-cased names) and the body. Redirects are not followed.
func httpCall(
    _ url: String, method: String = "GET", headers: [String] = [], form: [(String, String)]? = nil
) throws -> (status: Int, location: String, headers: [String: String], body: String) {
    let headerFile = NSTemporaryDirectory() + "herald-headers-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: headerFile) }
    var arguments = ["curl", "-s", "-m", "10", "-X", method, "-D", headerFile, "-o", "-", "-w", "\n%{http_code}"]
    arguments += headers.flatMap { ["-H", $0] }
    for (name, value) in form ?? [] { arguments += ["--data-urlencode", "\(name)=\(value)"] }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments + [url]
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    var responseHeaders: [String: String] = [:]
    for line in ((try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? "").split(separator: "\r\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        responseHeaders[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    guard let newline = text.lastIndex(of: "\n") else { return (0, "", responseHeaders, "") }
    return (
        Int(text[text.index(after: newline)...]) ?? 0, responseHeaders["location"] ?? "", responseHeaders,
        String(text[..<newline])
    )
}
