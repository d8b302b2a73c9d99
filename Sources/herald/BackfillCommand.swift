import ArgumentParser
import Foundation
import Herald

struct BackfillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Create one MANUAL event per existing row of a trigger's table, resumably.",
        discussion: """
            Rows are read in primary-key order in batches (plain SELECTs: writers never wait),
            and each batch's events commit together with its last key, so an interrupted
            backfill continues where it stopped when run again with the same trigger and
            --where: no row twice, none skipped. The trigger's filter (its insert expression)
            selects rows too unless --ignore-filter. Events are queued like captured ones:
            behind every event already pending, per key for an ordered trigger.
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "Trigger name.")
    var trigger: String

    @Option(name: .customLong("where"), help: "SQL condition over the table's columns, e.g. \"created_at > '2026-01-01'\".")
    var whereClause: String?

    @Option(help: "Rows per batch (one transaction each).")
    var batch = 1000

    @Option(help: "At most this many rows per second.")
    var rate: Double?

    @Flag(help: "Backfill rows the trigger's filter would not capture too.")
    var ignoreFilter = false

    @Flag(help: "Start again even though the same backfill finished before.")
    var restart = false

    func validate() throws {
        guard batch >= 1, batch <= 100_000 else { throw ValidationError("--batch must be between 1 and 100000") }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be a positive number of rows per second") }
    }

    func run() async throws {
        try await reportingErrors {
            let config = try options.loadSourceConfig()
            guard let trigger = config.trigger(named: self.trigger) else {
                throw CLIFailure(message: "trigger '\(self.trigger)' is not in \(config.file)")
            }
            let backfill = Backfill(
                trigger: trigger,
                options: BackfillOptions(
                    whereClause: whereClause, batchSize: batch, rowsPerSecond: rate, applyFilter: !ignoreFilter,
                    restart: restart),
                connection: try PGConnection(url: config.database.url), logger: options.makeLogger())
            var run = try backfill.start()
            var progress = BackfillProgress(rowsBefore: run.rowsDone, remainingAtStart: try backfill.estimateRemaining(run))
            if run.resumed {
                FileHandle.standardError.write(
                    Data("backfill \(trigger.name): resuming after \(run.rowsDone) rows done earlier\n".utf8))
            }
            let started = Date()
            var lastReport = started
            while true {
                let rows = try backfill.nextBatch(&run)
                progress.rowsThisRun += Int64(rows)
                progress.elapsedSeconds = Date().timeIntervalSince(started)
                if rows == 0 { break }
                if Date().timeIntervalSince(lastReport) >= 1 {
                    lastReport = Date()
                    FileHandle.standardError.write(Data((progress.line(trigger: trigger.name) + "\n").utf8))
                }
                if let rate {
                    // Pace the run: sleep until this process's rows fit the rate.
                    let due = Double(progress.rowsThisRun) / rate - Date().timeIntervalSince(started)
                    if due > 0 { try await Task.sleep(nanoseconds: UInt64(due * 1e9)) }
                }
            }
            print(progress.summary(trigger: trigger.name))
        }
    }
}
