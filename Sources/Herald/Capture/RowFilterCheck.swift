/// Checks every configured `filter:` against the database before `install-triggers` (or its
/// dry run) changes anything: the expression is planned, not run, with both rows replaced by
/// the table's typed null row, so an unknown column, a type error or a non-boolean result is
/// reported naming the trigger, and no lock is taken on the table.
struct RowFilterCheck {
    let triggers: [TriggerConfig]

    func validate(_ connection: PGConnection) throws {
        var problems: [InstallError] = []
        for trigger in triggers {
            guard let filter = trigger.filter else { continue }
            var checked: Set<String> = []
            for operation in CaptureOperation.allCases where trigger.spec(for: operation) != nil {
                guard let expression = filter.expressions[operation], checked.insert(expression.source).inserted
                else { continue }
                if let problem = try check(expression, operation: operation, trigger: trigger, connection) {
                    problems.append(problem)
                }
            }
        }
        if var first = problems.first {
            first.others = Array(problems.dropFirst())
            throw first
        }
    }

    private func check(
        _ expression: RowFilterExpression, operation: CaptureOperation, trigger: TriggerConfig, _ connection: PGConnection
    ) throws -> InstallError? {
        let nullRow = "(NULL::\(trigger.table.quoted))"
        let sql = "EXPLAIN SELECT 1 WHERE (\(expression.rendered(old: nullRow, new: nullRow)))"
        let savepoint = connection.inTransaction
        if savepoint { try connection.execute(script: "SAVEPOINT herald_filter_check") }
        let failure: PGError
        do {
            try connection.query(sql)
            if savepoint { try connection.execute(script: "RELEASE SAVEPOINT herald_filter_check") }
            return nil
        } catch {
            failure = error
        }
        if failure.isConnectionProblem { throw failure }
        if savepoint { try connection.execute(script: "ROLLBACK TO SAVEPOINT herald_filter_check") }
        return InstallError(
            code: .invalidFilter, trigger: trigger.name, table: trigger.table,
            message:
                "trigger \(trigger.name)'s filter is not a valid condition on table \(trigger.table) (\(operation.rawValue)): \(failure.message)"
        )
    }
}
