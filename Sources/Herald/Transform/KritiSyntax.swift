/// A compiled Kriti template's syntax tree. Spans are byte offsets into the template's
/// UTF-8 source, turned into lines and columns only when an error is reported.
struct KritiSpan: Sendable {
    var start: Int
    var end: Int

    static func + (lhs: KritiSpan, rhs: KritiSpan) -> KritiSpan {
        KritiSpan(start: min(lhs.start, rhs.start), end: max(lhs.end, rhs.end))
    }
}

enum KritiBinaryOperator: Sendable {
    case equal, notEqual, greater, greaterOrEqual, less, lessOrEqual, and, or, `in`
}

/// One step of a path: `.name` or `['name']` (a fixed key), or `[expression]`.
enum KritiFieldKey: Sendable {
    case name(String)
    case expression(KritiNode)
}

indirect enum KritiNode: Sendable {
    /// A JSON value with nothing to evaluate (folded at compile time).
    case literal(KritiValue, KritiSpan)
    case array([KritiNode], KritiSpan)
    case object(keys: [String], values: [KritiNode], KritiSpan)
    /// A string with `{{ }}` parts; literal parts are `.literal(.string)`.
    case stringTemplate([KritiNode], KritiSpan)
    case variable(String, KritiSpan)
    /// A required lookup: a missing key or index is an error.
    case field(KritiNode, KritiFieldKey, KritiSpan)
    /// `base?` followed by lookups: any failure, in the base or a lookup, gives `null`.
    case optionalChain(KritiNode, [KritiFieldKey], KritiSpan)
    case binary(KritiBinaryOperator, KritiNode, KritiNode, KritiSpan)
    case defaulting(KritiNode, KritiNode, KritiSpan)
    case ternary(KritiNode, KritiNode, KritiNode, KritiSpan)
    /// `if`, any `elif`s, and `else`: the first condition that holds picks its branch.
    case conditional(conditions: [KritiNode], branches: [KritiNode], otherwise: KritiNode, KritiSpan)
    case range(index: String?, binder: String, KritiNode, body: KritiNode, KritiSpan)
    case call(String, KritiNode, KritiSpan)

    var span: KritiSpan {
        switch self {
        case .literal(_, let span), .array(_, let span), .object(_, _, let span), .stringTemplate(_, let span),
            .variable(_, let span), .field(_, _, let span), .optionalChain(_, _, let span),
            .binary(_, _, _, let span), .defaulting(_, _, let span), .ternary(_, _, _, let span),
            .conditional(_, _, _, let span), .range(_, _, _, _, let span), .call(_, _, let span):
            span
        }
    }

    var constantValue: KritiValue? {
        if case .literal(let value, _) = self { return value }
        return nil
    }
}
