import Foundation
import Yams

/// Reads one YAML file into a ``ConfigNode`` tree, and follows Hasura's `!include` lines.
/// Every error names the file it happened in, so a problem inside an included
/// `public_orders.yaml` points there and not at `tables.yaml`.
enum ConfigFile {
    /// - Parameter includeRoot: the folder includes may not leave; by default the one the
    ///   file is in, or the including file's root for an included file.
    static func load(path: String, includedFrom: ConfigNode? = nil, includeRoot: String?? = nil) throws(ConfigError)
        -> ConfigNode
    {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            if let includedFrom {
                throw includedFrom.error(
                    .fileUnreadable, "cannot read included file \(path) (\(error.localizedDescription))")
            }
            throw ConfigError(
                code: .fileUnreadable, file: path, message: "cannot read configuration file (\(error.localizedDescription))")
        }
        var node = try parse(yaml: text, file: path)
        if let includeRoot {
            node.includeRoot = includeRoot
        } else if let includedFrom {
            node.includeRoot = includedFrom.includeRoot
        }
        return node
    }

    static func parse(yaml: String, file: String) throws(ConfigError) -> ConfigNode {
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw ConfigError(code: .syntax, file: file, message: "the file is empty")
            }
            return ConfigNode(
                file: file, node: node, path: "",
                includeRoot: URL(fileURLWithPath: file).deletingLastPathComponent().standardized.path)
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            let (line, problem) = location(of: error)
            throw ConfigError(code: .syntax, file: file, line: line, message: "invalid YAML: \(problem)")
        } catch {
            throw ConfigError(code: .syntax, file: file, message: "invalid YAML: \(error)")
        }
    }

    private static func location(of error: YamlError) -> (line: Int?, problem: String) {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let prefix = context.map { "\($0.text) " } ?? ""
            return (mark.line, prefix + problem)
        default:
            return (nil, "\(error)")
        }
    }
}

extension ConfigNode {
    /// The file an `!include` node names: `hasura metadata export` writes the quoted string
    /// `"!include public_orders.yaml"`, hand-written files often the tag `!include x.yaml`.
    var includedFileName: String? {
        guard case .scalar(let scalar) = node else { return nil }
        if scalar.tag.description == "!include" {
            return scalar.string.trimmingCharacters(in: .whitespaces)
        }
        let text = scalar.string.trimmingCharacters(in: .whitespaces)
        guard text.hasPrefix("!include ") else { return nil }
        return text.dropFirst("!include ".count).trimmingCharacters(in: .whitespaces)
    }

    /// This node, or the root of the file it includes (relative to the including file's
    /// folder, as Hasura resolves it).
    func resolvingInclude() throws(ConfigError) -> ConfigNode {
        guard let name = includedFileName else { return self }
        guard !name.isEmpty else { throw error(.invalidValue, "!include names no file") }
        let directory = URL(fileURLWithPath: file).deletingLastPathComponent()
        let path = name.hasPrefix("/") ? URL(fileURLWithPath: name).standardized.path
            : directory.appendingPathComponent(name).standardized.path
        if let root = includeRoot, !Self.isInside(path, root) {
            throw error(
                .invalidValue,
                "!include \(name) leaves \(root): includes stay inside the configuration's (or metadata) directory; set include_outside_directory: true at the top of the configuration to allow it")
        }
        return try ConfigFile.load(path: path, includedFrom: self)
    }

    static func isInside(_ path: String, _ root: String) -> Bool {
        let base = root.hasSuffix("/") ? root : root + "/"
        return path.hasPrefix(base)
    }

    /// A path written in this node's file, relative to that file's folder.
    func path(relativeToFile text: String) -> String {
        if text.hasPrefix("/") { return text }
        return URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(text).standardized.path
    }
}
