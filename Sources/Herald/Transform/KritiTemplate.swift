/// A Kriti template (hasura/kriti-lang), compiled once and evaluated per event.
///
/// ```swift
/// let template = try KritiTemplate(#"{"text": "New order {{$body.event.data.new.id}}"}"#)
/// let body = try template.evaluate(["$body": payload])
/// ```
///
/// Evaluation walks the syntax tree built at compile time; nothing is parsed again and
/// no JSON text is produced until the caller asks for it. Functions are Kriti's
/// `basicFuncMap` plus Hasura's `getSessionVariable`, which reads `$session_variables`.
public struct KritiTemplate: Sendable {
    let root: KritiNode
    /// Kept to turn an evaluation error's byte offsets into a line and column.
    let source: [UInt8]
    /// Characters added in front of the user's text on its first line (the opening quote
    /// of an unescaped template), taken off again when reporting a column.
    let addedColumns: Int

    /// Parses `source`; a syntax error is thrown with ``KritiError/isParseError`` set.
    public init(_ source: String) throws(KritiError) {
        self.source = Array(source.utf8)
        addedColumns = 0
        root = try KritiParser.parse(self.source)
    }

    /// Parses `text` as the inside of a string literal, as Hasura reads its unescaped
    /// templates (`url`, `query_params`, header values, form fields): it puts the text in
    /// double quotes, so `{{ }}` parts are interpolated and everything else is literal.
    /// As in Hasura, a `"` in the text ends the string. Error columns refer to `text`.
    public init(unescaped text: String) throws(KritiError) {
        source = Array("\"\(text)\"".utf8)
        addedColumns = 1
        do {
            root = try KritiParser.parse(source)
        } catch {
            throw error.shiftingFirstLine(by: -1)
        }
    }

    /// Evaluates the template with `variables` bound by name, including the `$`
    /// (`"$body"`, `"$base_url"`, `"$session_variables"`).
    public func evaluate(_ variables: [String: KritiValue]) throws(KritiError) -> KritiValue {
        var evaluator = KritiEvaluator(globals: variables)
        do {
            return try evaluator.evaluate(root)
        } catch {
            throw error.located(in: source).shiftingFirstLine(by: -addedColumns)
        }
    }
}

extension KritiError {
    func shiftingFirstLine(by columns: Int) -> KritiError {
        guard columns != 0 else { return self }
        var shifted = self
        if shifted.range.start.line == 1 { shifted.range.start.column = max(1, shifted.range.start.column + columns) }
        if shifted.range.end.line == 1 { shifted.range.end.column = max(1, shifted.range.end.column + columns) }
        return shifted
    }
}

/// An evaluation failure before its position is known as a line and column.
struct KritiFailure: Error {
    var code: KritiError.Code
    var message: String
    var span: KritiSpan

    func located(in source: [UInt8]) -> KritiError {
        KritiError(
            code: code, message: message,
            range: KritiError.SourceRange(
                start: SourceLocation(source: source, offset: span.start),
                end: SourceLocation(source: source, offset: span.end)))
    }

    static func typeError(_ value: KritiValue, expected: String, at span: KritiSpan) -> KritiFailure {
        KritiFailure(
            code: .typeError,
            message: "Couldn't match expected type '\(expected)' with actual type '\(value.typeName)'", span: span)
    }
}

/// Evaluates a syntax tree with Kriti's semantics (kriti-lang `Kriti.Eval`): `&&` and `||`
/// evaluate both sides, `??` replaces only `null`, and an optional chain turns any failure
/// of its base or its lookups into `null`.
struct KritiEvaluator {
    let globals: [String: KritiValue]
    /// Range binders, innermost last; few and short-lived, so a list beats a dictionary.
    var locals: [(name: String, value: KritiValue)] = []

    init(globals: [String: KritiValue]) { self.globals = globals }

    func lookup(_ name: String) -> KritiValue? {
        for binding in locals.reversed() where binding.name == name { return binding.value }
        return globals[name]
    }

    mutating func evaluate(_ node: KritiNode) throws(KritiFailure) -> KritiValue {
        switch node {
        case .literal(let value, _):
            return value

        case .array(let elements, _):
            var values: [KritiValue] = []
            values.reserveCapacity(elements.count)
            for element in elements { values.append(try evaluate(element)) }
            return .array(values)

        case .object(let keys, let values, _):
            var object = KritiObject(minimumCapacity: keys.count)
            for (key, value) in zip(keys, values) { object[key] = try evaluate(value) }
            return .object(object)

        case .stringTemplate(let parts, _):
            var text = ""
            for part in parts {
                switch try evaluate(part) {
                case .string(let string): text += string
                case .number(let number): text += number.description
                case .bool(let flag): text += flag ? "true" : "false"
                case let other: text += other.jsonText
                }
            }
            return .string(text)

        case .variable(let name, let span):
            guard let value = lookup(name) else {
                throw KritiFailure(code: .nameError, message: "Variable '\(name)' not in scope", span: span)
            }
            return value

        case .field(let base, let key, let span):
            return try requiredField(of: base, key: key, span: span)

        case .optionalChain(let base, let keys, _):
            let start: KritiValue
            do {
                start = try evaluate(base)
            } catch {
                start = .null
            }
            var resolvedKeys: [KritiValue] = []
            resolvedKeys.reserveCapacity(keys.count)
            for key in keys {
                switch key {
                case .name(let name): resolvedKeys.append(.string(name))
                case .expression(let expression): resolvedKeys.append(try evaluate(expression))
                }
            }
            switch start {
            case .object, .array, .null:
                var current = start
                for key in resolvedKeys {
                    guard let next = KritiEvaluator.step(current, key) else { return .null }
                    current = next
                }
                return current
            default:
                throw KritiFailure.typeError(start, expected: "Object", at: base.span)
            }

        case .binary(let op, let left, let right, let span):
            let lhs = try evaluate(left)
            let rhs = try evaluate(right)
            return try KritiEvaluator.apply(op, lhs, rhs, span: span)

        case .defaulting(let left, let right, _):
            let value = try evaluate(left)
            if case .null = value { return try evaluate(right) }
            return value

        case .ternary(let condition, let whenTrue, let whenFalse, let span):
            switch try evaluate(condition) {
            case .bool(true): return try evaluate(whenTrue)
            case .bool(false): return try evaluate(whenFalse)
            case let other: throw KritiFailure.typeError(other, expected: "Boolean", at: span)
            }

        case .conditional(let conditions, let branches, let otherwise, let span):
            for (condition, branch) in zip(conditions, branches) {
                switch try evaluate(condition) {
                case .bool(true): return try evaluate(branch)
                case .bool(false): continue
                case let other: throw KritiFailure.typeError(other, expected: "Boolean", at: span)
                }
            }
            return try evaluate(otherwise)

        case .range(let index, let binder, let collection, let body, let span):
            let value = try evaluate(collection)
            guard case .array(let elements) = value else {
                throw KritiFailure.typeError(value, expected: "Array", at: span)
            }
            var results: [KritiValue] = []
            results.reserveCapacity(elements.count)
            let depth = locals.count
            defer { locals.removeSubrange(depth...) }
            for (position, element) in elements.enumerated() {
                locals.removeSubrange(depth...)
                locals.append((binder, element))
                if let index { locals.append((index, .number(position))) }
                results.append(try evaluate(body))
            }
            return .array(results)

        case .call(let name, let argumentNode, let span):
            let argument = try evaluate(argumentNode)
            guard let function = KritiFunctions.basic[name] else {
                if name == KritiFunctions.getSessionVariable {
                    return try KritiFunctions.sessionVariable(argument, in: globals, at: argumentNode.span)
                }
                throw KritiFailure(code: .nameError, message: "Variable '\(name)' not in scope", span: span)
            }
            do {
                return try function(argument)
            } catch {
                throw KritiFailure(code: .functionError, message: error.message, span: argumentNode.span)
            }
        }
    }

    mutating func requiredField(of base: KritiNode, key: KritiFieldKey, span: KritiSpan) throws(KritiFailure) -> KritiValue {
        let value = try evaluate(base)
        switch (value, key) {
        case (.object(let object), .name(let name)):
            guard let found = object[name] else { throw KritiEvaluator.missingAttribute(name, span) }
            return found
        case (.object(let object), .expression(let expression)):
            let keyValue = try evaluate(expression)
            guard case .string(let name) = keyValue else {
                throw KritiFailure.typeError(keyValue, expected: "String", at: base.span)
            }
            guard let found = object[name] else { throw KritiEvaluator.missingAttribute(name, span) }
            return found
        case (.array(let elements), .expression(let expression)):
            let keyValue = try evaluate(expression)
            guard case .number(let number) = keyValue, let index = number.intValue else {
                throw KritiFailure.typeError(keyValue, expected: "Integer", at: span)
            }
            guard elements.indices.contains(index) else {
                throw KritiFailure(code: .indexError, message: "Index out of range", span: span)
            }
            return elements[index]
        default:
            throw KritiFailure.typeError(value, expected: "Object", at: base.span)
        }
    }

    static func missingAttribute(_ name: String, _ span: KritiSpan) -> KritiFailure {
        KritiFailure(code: .attributeError, message: "'Object' has no attribute '\(name)'", span: span)
    }

    /// One lookup of an optional chain: a string key into an object, an integer into an
    /// array; anything else finds nothing.
    static func step(_ value: KritiValue, _ key: KritiValue) -> KritiValue? {
        switch (value, key) {
        case (.object(let object), .string(let name)):
            return object[name]
        case (.array(let elements), .number(let number)):
            guard let index = number.intValue, elements.indices.contains(index) else { return nil }
            return elements[index]
        default:
            return nil
        }
    }

    static func apply(
        _ op: KritiBinaryOperator, _ lhs: KritiValue, _ rhs: KritiValue, span: KritiSpan
    ) throws(KritiFailure) -> KritiValue {
        switch op {
        case .equal: return .bool(lhs == rhs)
        case .notEqual: return .bool(lhs != rhs)
        case .greater: return .bool(KritiValue.compare(lhs, rhs) > 0)
        case .greaterOrEqual: return .bool(KritiValue.compare(lhs, rhs) >= 0)
        case .less: return .bool(KritiValue.compare(lhs, rhs) < 0)
        case .lessOrEqual: return .bool(KritiValue.compare(lhs, rhs) <= 0)
        case .and, .or:
            guard case .bool(let p) = lhs else { throw KritiFailure.typeError(lhs, expected: "Boolean", at: span) }
            guard case .bool(let q) = rhs else { throw KritiFailure.typeError(rhs, expected: "Boolean", at: span) }
            return .bool(op == .and ? p && q : p || q)
        case .in:
            switch (lhs, rhs) {
            case (.string(let key), .object(let object)): return .bool(object[key] != nil)
            case (_, .object): throw KritiFailure.typeError(lhs, expected: "String", at: span)
            case (_, .array(let elements)): return .bool(elements.contains(lhs))
            default: throw KritiFailure.typeError(rhs, expected: "Array", at: span)
            }
        }
    }
}
