import Foundation
import Yams

/// Reads Hasura's `request_transform` into a compiled ``RequestTransform``: every template is
/// parsed here, so a template that does not parse stops the load with the file, the line
/// of its key and Kriti's own line and column inside the template.
extension TriggerParser {
    static let requestTransformKeys: Set<String> = [
        "version", "template_engine", "method", "url", "query_params", "request_headers", "body", "content_type",
    ]

    func parseRequestTransform(_ node: ConfigNode) throws(ConfigError) -> RequestTransform {
        try node.rejectUnknownKeys(Self.requestTransformKeys)
        var transform = RequestTransform(definition: YAMLJSON.json(node.node))
        if let versionNode = try node.child("version") {
            let version = try versionNode.int()
            guard version == 1 || version == 2 else {
                throw versionNode.error(.invalidValue, "unknown request_transform version \(version) (expected 1 or 2)")
            }
            transform.version = version
        }
        if let engine = try node.child("template_engine"), try engine.string() != "Kriti" {
            throw engine.error(.invalidValue, "the only template engine is Kriti")
        }
        var problems = ProblemList()
        problems.check { () throws(ConfigError) in
            guard let methodNode = try node.child("method") else { return }
            let text = try methodNode.string()
            guard let method = RequestTransform.Method(rawValue: text.uppercased()) else {
                throw methodNode.error(
                    .invalidValue,
                    "unknown method '\(text)' (expected one of: \(RequestTransform.Method.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            transform.method = method
        }
        problems.check { () throws(ConfigError) in
            transform.url = try node.child("url").map { (url) throws(ConfigError) in try unescaped(url) }
        }
        problems.check { () throws(ConfigError) in
            guard let params = try node.child("query_params") else { return }
            if case .scalar = params.node {
                transform.queryParams = .template(try unescaped(params))
                return
            }
            var pairs: [(key: KritiTemplate, value: KritiTemplate?)] = []
            for (key, value) in try params.entries() {
                pairs.append((try compile(key, node: value, unescaped: true), value.isNull ? nil : try unescaped(value)))
            }
            transform.queryParams = .pairs(pairs)
        }
        problems.check { () throws(ConfigError) in
            guard let headers = try node.child("request_headers") else { return }
            try headers.rejectUnknownKeys(["add_headers", "remove_headers"])
            if let add = try headers.child("add_headers") {
                for (name, value) in try add.entries() {
                    if let problem = HeaderValidation.problem(name: name, value: "", owner: "request_transform") {
                        throw value.error(.invalidValue, problem)
                    }
                    transform.addHeaders.append((name, try unescaped(value)))
                }
            }
            if let remove = try headers.child("remove_headers") {
                for element in try remove.elements() { transform.removeHeaders.insert(try element.string().lowercased()) }
            }
        }
        problems.check { () throws(ConfigError) in transform.body = try parseBody(node, version: transform.version) }
        try problems.throwIfAny()
        return transform
    }

    /// Version 2: `body: {action, template | form_template}`. Version 1: `body` is the
    /// template itself and `content_type` says how it is sent.
    private func parseBody(_ node: ConfigNode, version: Int) throws(ConfigError) -> RequestTransform.Body {
        let contentType = try node.child("content_type")
        guard let body = try node.child("body") else {
            if let contentType { throw contentType.error(.invalidValue, "content_type without a body") }
            return .unchanged
        }
        if version == 1 {
            let template = try compile(try body.string(), node: body, unescaped: false)
            switch try contentType?.string() ?? "application/json" {
            case "application/json": return .transform(template)
            case "application/x-www-form-urlencoded": return .formFromObject(template)
            case let other:
                throw (contentType ?? body).error(
                    .invalidValue,
                    "unknown content_type '\(other)' (expected application/json or application/x-www-form-urlencoded)")
            }
        }
        if let contentType {
            throw contentType.error(.invalidValue, "content_type is a version 1 key; in version 2 the body's action sets it")
        }
        try body.rejectUnknownKeys(["action", "template", "form_template"])
        let actionNode = try body.required("action")
        switch try actionNode.string() {
        case "transform":
            let template = try body.required("template")
            return .transform(try compile(try template.string(), node: template, unescaped: false))
        case "remove":
            return .remove
        case "x_www_form_urlencoded":
            var fields: [(name: String, value: KritiTemplate)] = []
            for (name, value) in try body.required("form_template").entries() {
                fields.append((name, try unescaped(value)))
            }
            return .form(fields)
        case let other:
            throw actionNode.error(
                .invalidValue, "unknown body action '\(other)' (expected transform, remove or x_www_form_urlencoded)")
        }
    }

    private func unescaped(_ node: ConfigNode) throws(ConfigError) -> KritiTemplate {
        try compile(try node.string(), node: node, unescaped: true)
    }

    /// Compiles `text`, the value of `node`. On a parse error the reported file line is the
    /// template's line that fails: a block scalar (`|`, `>`) starts on the line after its key.
    private func compile(_ text: String, node: ConfigNode, unescaped: Bool) throws(ConfigError) -> KritiTemplate {
        do {
            return unescaped ? try KritiTemplate(unescaped: text) : try KritiTemplate(text)
        } catch {
            var problem = node.error(
                .invalidValue,
                "the template does not parse: \(error.message) (template line \(error.line), column \(error.column))")
            if let line = node.line {
                var isBlock = false
                if case .scalar(let scalar) = node.node { isBlock = scalar.style == .literal || scalar.style == .folded }
                problem.line = line + error.line - (isBlock ? 0 : 1)
            }
            throw problem
        }
    }
}
