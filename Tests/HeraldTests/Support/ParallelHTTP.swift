import Foundation

/// Starts `count` curl requests at once (one process each, so they truly overlap), runs
/// `whileRunning` as they go, and returns each one's status and response headers (lower-cased
/// names) once all have finished.
func parallelCalls(
    _ count: Int, _ url: String, method: String = "GET", headers: [String] = [], form: [(String, String)]? = nil,
    whileRunning: () throws -> Void = {}
) throws -> [(status: Int, headers: [String: String])] {
    var arguments = ["curl", "-s", "-m", "20", "-X", method, "-o", "/dev/null", "-D", "-"]
    arguments += headers.flatMap { ["-H", $0] }
    for (name, value) in form ?? [] { arguments += ["--data-urlencode", "\(name)=\(value)"] }
    let started = try (0..<count).map { _ in
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments + [url]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        return (process, out)
    }
    try whileRunning()
    return started.map { process, out in
        // Only headers are written, far less than a pipe holds, so reading after exit is safe.
        process.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let lines = text.split(separator: "\r\n")
        let status = lines.first.flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) } ?? 0
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, fields)
    }
}

/// A raw TCP connection to a loopback port, for requests curl will not send (a head never
/// finished).
final class RawConnection {
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(descriptor)
            throw ReceiverError(message: "cannot connect to 127.0.0.1:\(port): errno \(errno)")
        }
    }

    deinit { close(descriptor) }

    func send(_ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Whether the server closed the connection within `seconds` (end of stream or reset);
    /// whatever it sends first (an error response, say) is read and skipped.
    func closedByServer(within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let waitMilliseconds = Int32(max(1, deadline.timeIntervalSinceNow * 1000))
            guard poll(&entry, 1, waitMilliseconds) > 0 else { continue }
            let read = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if read <= 0 { return true }
        }
        return false
    }
}
