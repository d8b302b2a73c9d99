import Foundation

@testable import Herald

/// A directory of this process's own, rewritten for every input; in memory where the
/// machine has /dev/shm, since writing the files is most of an input's cost.
let root: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm/" : NSTemporaryDirectory()
    let path = base + "herald-fuzz-config-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()

/// Secrets and URLs the corpus configurations name, so their `*_from_env` keys resolve.
let environment = [
    "HERALD_FUZZ_URL": "postgres://app:pw@127.0.0.1:5432/app", "HASURA_GRAPHQL_DATABASE_URL": "postgres://app@localhost/app",
    "ORDERS_WEBHOOK": "http://127.0.0.1:8000/orders", "ORDERS_API_KEY": "key",
    "ORDERS_SIGNING_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
]

/// One input is a configuration directory in one text: what comes before the first
/// `#file: PATH` line is `herald.yaml`, each such line starts the file at PATH (relative, kept
/// inside the directory), so a Hasura metadata export with its `!include`s is one input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    // With this key the operator lets includes read any path, /dev/zero too: trusted by design.
    if text.contains("include_outside_directory") { return 0 }
    try? FileManager.default.removeItem(atPath: root)
    try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    var files: [(path: String, text: String)] = [("herald.yaml", "")]
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.hasPrefix("#file: ") {
            let path = line.dropFirst("#file: ".count).trimmingCharacters(in: .whitespaces)
            let parts = path.split(separator: "/")
            guard !parts.isEmpty, !path.hasPrefix("/"), !parts.contains(where: { $0 == ".." || $0 == "." }) else {
                return 0
            }
            files.append((path, ""))
        } else {
            files[files.count - 1].text += line + "\n"
        }
    }
    for file in files {
        let url = URL(fileURLWithPath: root).appendingPathComponent(file.path)
        try? FileManager.default.createDirectory(
            at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? file.text.write(to: url, atomically: false, encoding: .utf8)
    }
    if let config = try? ConfigLoader.load(path: root + "/herald.yaml", environment: environment) {
        _ = ConfigSummary.text(for: config)
    }
    _ = try? ConfigLoader.parse(yaml: files[0].text, file: "herald.yaml", environment: environment)
    return 0
}
