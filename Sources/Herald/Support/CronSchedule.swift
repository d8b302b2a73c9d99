import Foundation

/// A five-field cron expression (minute, hour, day of month, month, day of week), evaluated
/// in UTC as Hasura evaluates `cleanup_config.schedule`. Fields take `*`, numbers, ranges
/// `a-b`, steps `*/n` and `a-b/n`, and comma lists; day of week 0 and 7 are Sunday. When both
/// day fields are restricted a day matching either runs (classic cron).
public struct CronSchedule: Sendable, Equatable, CustomStringConvertible {
    public let description: String
    private let minutes: Set<Int>
    private let hours: Set<Int>
    private let daysOfMonth: Set<Int>
    private let months: Set<Int>
    private let daysOfWeek: Set<Int>
    private let anyDayOfMonth: Bool
    private let anyDayOfWeek: Bool

    /// Parses `text`; the error message says which field is wrong.
    public init(_ text: String) throws(CronScheduleError) {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw CronScheduleError(message: "'\(text)' is not a cron expression of five fields (minute hour day month weekday)")
        }
        description = text
        minutes = try Self.field(fields[0], "minute", 0...59)
        hours = try Self.field(fields[1], "hour", 0...23)
        daysOfMonth = try Self.field(fields[2], "day of month", 1...31)
        months = try Self.field(fields[3], "month", 1...12)
        daysOfWeek = Set(try Self.field(fields[4], "day of week", 0...7).map { $0 % 7 })
        anyDayOfMonth = fields[2] == "*"
        anyDayOfWeek = fields[4] == "*"
    }

    private static func field(_ text: String, _ name: String, _ range: ClosedRange<Int>) throws(CronScheduleError) -> Set<Int> {
        var values = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw CronScheduleError(message: "bad \(name) field '\(text)'") }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0 else {
                    throw CronScheduleError(message: "bad step in \(name) field '\(text)'")
                }
                step = parsed
            }
            let span: ClosedRange<Int>
            if pieces[0] == "*" {
                span = range
            } else {
                let bounds = pieces[0].split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
                guard (1...2).contains(bounds.count), let low = bounds[0], let high = bounds.count == 2 ? bounds[1] : low,
                    range.contains(low), range.contains(high), low <= high
                else {
                    throw CronScheduleError(
                        message: "bad \(name) field '\(text)' (numbers \(range.lowerBound)-\(range.upperBound), no names)")
                }
                span = low...(pieces.count == 2 && bounds.count == 1 ? range.upperBound : high)
            }
            values.formUnion(stride(from: span.lowerBound, through: span.upperBound, by: step))
        }
        return values
    }

    /// The first matching minute strictly after `date`, or nil if none within eight years
    /// (a schedule such as `0 0 31 2 *` never matches).
    public func next(after date: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let start = calendar.dateInterval(of: .minute, for: date)!.start.addingTimeInterval(60)
        var candidate = start
        let limit = date.addingTimeInterval(8 * 366 * 86400)
        while candidate < limit {
            let parts = calendar.dateComponents([.month, .day, .weekday, .hour, .minute], from: candidate)
            if !months.contains(parts.month!) {
                candidate = calendar.date(byAdding: .month, value: 1, to: calendar.dateInterval(of: .month, for: candidate)!.start)!
                continue
            }
            if !dayMatches(day: parts.day!, weekday: parts.weekday! - 1) {
                candidate = calendar.date(byAdding: .day, value: 1, to: calendar.startOfDay(for: candidate))!
                continue
            }
            if !hours.contains(parts.hour!) {
                candidate = calendar.dateInterval(of: .hour, for: candidate)!.start.addingTimeInterval(3600)
                continue
            }
            if !minutes.contains(parts.minute!) {
                candidate = candidate.addingTimeInterval(60)
                continue
            }
            return candidate
        }
        return nil
    }

    private func dayMatches(day: Int, weekday: Int) -> Bool {
        switch (anyDayOfMonth, anyDayOfWeek) {
        case (true, true): true
        case (true, false): daysOfWeek.contains(weekday)
        case (false, true): daysOfMonth.contains(day)
        case (false, false): daysOfMonth.contains(day) || daysOfWeek.contains(weekday)
        }
    }
}

public struct CronScheduleError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
