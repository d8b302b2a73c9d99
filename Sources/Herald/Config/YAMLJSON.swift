import Foundation
import Yams

/// Writes a YAML value as JSON text, keeping the file's key order (a cron trigger's `payload`
/// is sent as written). Plain scalars are typed as YAML 1.2's core schema types them
/// (null, booleans, integers, floats); quoted ones are strings.
enum YAMLJSON {
    static func json(_ node: Node) -> String {
        switch node {
        case .mapping(let mapping):
            let members = mapping.map { key, value in
                DeliveryRequest.json(key.string ?? "") + ":" + json(value)
            }
            return "{" + members.joined(separator: ",") + "}"
        case .sequence(let sequence):
            return "[" + sequence.map(json).joined(separator: ",") + "]"
        case .scalar(let scalar):
            return scalarJSON(scalar)
        case .alias:
            return "null"
        }
    }

    private static func scalarJSON(_ scalar: Node.Scalar) -> String {
        let text = scalar.string
        guard scalar.style == .plain else { return DeliveryRequest.json(text) }
        switch text {
        case "", "~", "null", "Null", "NULL": return "null"
        case "true", "True", "TRUE": return "true"
        case "false", "False", "FALSE": return "false"
        default: break
        }
        if text.wholeMatch(of: /[-+]?[0-9]+/) != nil, let value = Int64(text) { return String(value) }
        if text.wholeMatch(of: /[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?/) != nil,
            let value = Double(text), value.isFinite
        {
            return text.hasPrefix("+") ? String(text.dropFirst()) : text.hasPrefix(".") ? "0" + text : text
        }
        return DeliveryRequest.json(text)
    }
}
