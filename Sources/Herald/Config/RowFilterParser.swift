extension TriggerParser {
    /// `filter:` — one expression for every operation, or a mapping by operation.
    func parseRowFilter(_ node: ConfigNode) throws(ConfigError) -> RowFilter? {
        guard let filterNode = try node.child("filter") else { return nil }
        if case .scalar = filterNode.node {
            return RowFilter(all: try expression(filterNode))
        }
        try filterNode.rejectUnknownKeys(Set(CaptureOperation.allCases.map(\.rawValue)))
        var byOperation: [CaptureOperation: RowFilterExpression] = [:]
        for (key, value) in try filterNode.entries() {
            guard let operation = CaptureOperation(rawValue: key) else { continue }
            byOperation[operation] = try expression(value)
        }
        guard !byOperation.isEmpty else {
            throw filterNode.error(.invalidValue, "the filter names no operation (expected insert, update or delete)")
        }
        return RowFilter(byOperation: byOperation)
    }

    private func expression(_ node: ConfigNode) throws(ConfigError) -> RowFilterExpression {
        let text = try node.string()
        do {
            return try RowFilterExpression(text)
        } catch {
            throw node.error(.invalidValue, error.description)
        }
    }
}
