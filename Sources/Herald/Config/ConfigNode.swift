import Yams

/// A position in the parsed YAML tree with its key path, so every read can report where a
/// bad value sits. Reading through this type, instead of `Decodable`, is what gives errors
/// their line numbers and lets unknown keys be named.
struct ConfigNode {
    let file: String
    let node: Node
    let path: String
    /// The folder `!include` may not leave (the configuration's or the metadata directory's);
    /// nil when the configuration allows includes anywhere (`include_outside_directory`).
    var includeRoot: String?

    var line: Int? { node.mark?.line }

    func error(_ code: ConfigError.Code, _ message: String) -> ConfigError {
        ConfigError(code: code, file: file, line: line, key: path, message: message)
    }

    var isNull: Bool {
        guard case .scalar(let scalar) = node else { return false }
        return scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    private func childPath(_ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    /// The entries of a mapping, in file order.
    func entries() throws(ConfigError) -> [(key: String, value: ConfigNode)] {
        guard case .mapping(let mapping) = node else {
            throw error(.wrongType, "expected a mapping")
        }
        var result: [(key: String, value: ConfigNode)] = []
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                throw error(.wrongType, "mapping keys must be strings")
            }
            result.append((scalar.string, ConfigNode(file: file, node: valueNode, path: childPath(scalar.string), includeRoot: includeRoot)))
        }
        return result
    }

    /// Fails naming every key that is not in `allowed` (all of them, so a second typo does
    /// not wait for the next run).
    func rejectUnknownKeys(_ allowed: Set<String>) throws(ConfigError) {
        if let problems = ConfigError.combining(unknownKeyProblems(allowed)) { throw problems }
    }

    /// One problem per key that is neither in `allowed` nor in `reportedElsewhere` (keys the
    /// caller refuses with a reason of its own, and which must not be offered as expected).
    func unknownKeyProblems(_ allowed: Set<String>, reportedElsewhere: Set<String> = []) -> [ConfigError] {
        let entries: [(key: String, value: ConfigNode)]
        do {
            entries = try self.entries()
        } catch {
            return [error]
        }
        let expected = allowed.sorted().joined(separator: ", ")
        return entries.filter { !allowed.contains($0.key) && !reportedElsewhere.contains($0.key) }.map { key, value in
            let hint = ClosestName.suggestion(for: key, among: allowed).map { "did you mean '\($0)'? " } ?? ""
            return ConfigError(
                code: .unknownKey, file: file, line: value.line, key: childPath(key),
                message: "unknown key '\(key)' (\(hint)expected one of: \(expected))")
        }
    }

    /// Whether this mapping has a key outside `allowed` (already reported as unknown, so a
    /// check that follows from it need not say the same again).
    func hasUnknownKeys(_ allowed: Set<String>) -> Bool {
        ((try? entries()) ?? []).contains { !allowed.contains($0.key) }
    }

    /// The value under `key`, nil when absent or null.
    func child(_ key: String) throws(ConfigError) -> ConfigNode? {
        for (name, value) in try entries() where name == key {
            return value.isNull ? nil : value
        }
        return nil
    }

    func required(_ key: String) throws(ConfigError) -> ConfigNode {
        guard let value = try child(key) else {
            throw error(.missingKey, "missing required key '\(key)'")
        }
        return value
    }

    func elements() throws(ConfigError) -> [ConfigNode] {
        guard case .sequence(let sequence) = node else {
            throw error(.wrongType, "expected a list")
        }
        return sequence.enumerated().map { index, element in
            ConfigNode(file: file, node: element, path: "\(path)[\(index)]", includeRoot: includeRoot)
        }
    }

    func string() throws(ConfigError) -> String {
        guard case .scalar(let scalar) = node else {
            throw error(.wrongType, "expected a string")
        }
        return scalar.string
    }

    func int() throws(ConfigError) -> Int {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string) else {
            throw error(.wrongType, "expected an integer")
        }
        return value
    }

    func bool() throws(ConfigError) -> Bool {
        guard case .scalar(let scalar) = node else { throw error(.wrongType, "expected true or false") }
        switch scalar.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(.wrongType, "expected true or false")
        }
    }
}

extension ConfigNode {
    func double() throws(ConfigError) -> Double {
        guard case .scalar(let scalar) = node, let value = Double(scalar.string), value.isFinite else {
            throw error(.wrongType, "expected a number")
        }
        return value
    }
}
