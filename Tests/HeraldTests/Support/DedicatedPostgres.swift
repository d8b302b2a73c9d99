import Foundation

/// A PostgreSQL server of one test's own (scripts/lib/common.sh), for tests that stop and
/// restart the server, which would disturb every other test on the shared one.
final class DedicatedPostgres: @unchecked Sendable {
    let url: String
    private let directory: String
    private let control: String

    static var commonScript: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../scripts/lib/common.sh").standardized.path
    }

    /// `settings`: more server settings (`name=value`), e.g. `shared_preload_libraries=citus`.
    init(settings: [String] = []) throws {
        let extra = settings.map { " '\($0)'" }.joined()
        let output = try Self.bash(
            "source '\(Self.commonScript)' && herald_pg_start fsync=off\(extra) >/dev/null 2>&1 "
                + "&& printf '%s\\n%s\\n%s\\n' \"$HERALD_TEST_DATABASE_URL\" \"$HERALD_PG_DIR\" \"$HERALD_TEST_PG_CTL\"")
        let lines = output.split(separator: "\n").map(String.init)
        guard lines.count == 3 else { throw ReceiverError(message: "could not start PostgreSQL: \(output)") }
        url = lines[0]
        directory = lines[1]
        control = lines[2]
    }

    deinit {
        _ = try? Self.bash("\(control) -m immediate stop >/dev/null 2>&1; rm -rf '\(directory)'")
    }

    func stop() throws { _ = try Self.bash("\(control) -m fast stop") }
    func start() throws { _ = try Self.bash("\(control) start") }

    /// Runs a bash script and returns its standard output. Uses system(3) rather than
    /// Foundation's Process, which was seen to leave this script's bash unreaped (the
    /// server it starts outlives it) and wait forever.
    @discardableResult
    static func bash(_ script: String) throws -> String {
        let output = NSTemporaryDirectory() + "herald-bash-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let quoted = script.replacingOccurrences(of: "'", with: "'\\''")
        let status = system("/bin/bash -c '\(quoted)' > '\(output)' </dev/null")
        guard status == 0 else {
            throw ReceiverError(message: "bash failed (\(status)): \(script)")
        }
        return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    }
}
