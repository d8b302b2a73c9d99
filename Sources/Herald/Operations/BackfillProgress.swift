import Foundation

/// The progress line and summary of `herald backfill`: rows done of the estimated total,
/// the rate of this process, and the time left at that rate.
public struct BackfillProgress: Sendable, Equatable {
    /// Rows the run had done when this process started (earlier, interrupted processes).
    public var rowsBefore: Int64
    /// Rows this process has done.
    public var rowsThisRun: Int64 = 0
    /// The planner's estimate of the rows left when this process started.
    public var remainingAtStart: Int64?
    public var elapsedSeconds: Double = 0

    public init(rowsBefore: Int64, remainingAtStart: Int64?) {
        self.rowsBefore = rowsBefore
        self.remainingAtStart = remainingAtStart
    }

    public var rowsDone: Int64 { rowsBefore + rowsThisRun }

    /// Rows per second of this process.
    public var rate: Double { elapsedSeconds > 0 ? Double(rowsThisRun) / elapsedSeconds : 0 }

    /// The estimated total, never below what is already done.
    public var estimatedTotal: Int64? {
        remainingAtStart.map { max(rowsBefore + $0, rowsDone) }
    }

    /// Seconds left at the current rate; nil until there is a rate and an estimate.
    public var secondsLeft: Double? {
        guard let total = estimatedTotal, rate > 0 else { return nil }
        return Double(total - rowsDone) / rate
    }

    public func line(trigger: String) -> String {
        var text = "backfill \(trigger): \(rowsDone) rows"
        if let total = estimatedTotal, total > 0 {
            // An estimate: never claim 100% before the last batch came back empty.
            let percent = min(99, Int(Double(rowsDone) * 100 / Double(total)))
            text += " of ~\(total) (\(percent)%)"
        }
        text += ", \(Int(rate.rounded())) rows/s"
        if let secondsLeft { text += ", about \(DurationText.describe(seconds: Int(secondsLeft.rounded(.up)))) left" }
        return text
    }

    public func summary(trigger: String) -> String {
        var text =
            "backfill of trigger \(trigger) finished: \(rowsThisRun) events created in \(String(format: "%.1f", elapsedSeconds)) s (\(Int(rate.rounded())) rows/s)"
        if rowsBefore > 0 { text += "; \(rowsBefore) rows were done by an earlier run, \(rowsDone) in all" }
        return text
    }
}
