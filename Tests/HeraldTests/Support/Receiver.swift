import Foundation

/// A real HTTP receiver on an ephemeral loopback port (scripts/lib/receiver.py), whose
/// behaviour is chosen by the request path. It records every request it gets.
final class Receiver: @unchecked Sendable {
    struct Request: Decodable {
        var method: String
        var path: String
        var headers: [String: String]
        var body: String
        var time: Double

        func header(_ name: String) -> String? {
            headers.first { $0.key.lowercased() == name.lowercased() }?.value
        }
    }

    struct Stats: Decodable {
        var count: Int
        var max_concurrency: Int
    }

    let port: Int
    private let process: Process

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../scripts/lib/receiver.py").standardized.path
    }

    init() throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5)) else {
            process.terminate()
            throw ReceiverError(message: "receiver did not start: \(text)")
        }
        self.port = port
    }

    deinit {
        // SIGKILL: the test process may block SIGTERM, and children inherit that mask.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    func requests() throws -> [Request] {
        try JSONDecoder().decode([Request].self, from: try get("/_requests"))
    }

    func stats() throws -> Stats {
        try JSONDecoder().decode(Stats.self, from: try get("/_stats"))
    }

    private func get(_ path: String) throws -> Data {
        let result = Process()
        result.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        result.arguments = ["curl", "-sf", url(path)]
        let out = Pipe()
        result.standardOutput = out
        try result.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        result.waitUntilExit()
        guard result.terminationStatus == 0 else { throw ReceiverError(message: "GET \(path) failed") }
        return data
    }
}

struct ReceiverError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
@discardableResult
func eventually(timeout: Double = 15, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return try condition()
}
