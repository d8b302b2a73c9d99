import Foundation

/// The result of running a command to completion.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `herald` with arguments and environment additions, and waits for it.
func runHerald(_ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
    try runProcess(TestEnvironment.heraldExecutable, arguments, environment: environment)
}

/// Runs a command found on PATH to completion.
func runTool(_ arguments: [String]) throws -> CommandResult {
    try runProcess(URL(fileURLWithPath: "/usr/bin/env"), arguments)
}

private func runProcess(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws
    -> CommandResult
{
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    // Never a terminal: commands that would ask for confirmation must say so instead.
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read before waiting so a chatty child cannot fill the pipe and block.
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: stderr, as: UTF8.self))
}

/// Writes `text` to a fresh temporary file and returns its path.
func temporaryFile(_ text: String, suffix: String = ".yaml") throws -> String {
    let path = NSTemporaryDirectory() + "herald-\(UUID().uuidString)\(suffix)"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
