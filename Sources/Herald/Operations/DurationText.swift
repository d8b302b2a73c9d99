import Foundation

/// Durations as people type them: `90s`, `15m`, `12h`, `7d`, `2w`. A bare number is refused:
/// `--older-than 7` meaning seven seconds deleted far more than anyone asking for it meant.
public enum DurationText {
    public static func seconds(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard let unit = trimmed.last else { return nil }
        let multipliers: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
        guard let multiplier = multipliers[unit], let value = Int(trimmed.dropLast()), value >= 0 else { return nil }
        return value * multiplier
    }

    /// The message for text that is not a duration, naming where it came from.
    public static func problem(_ text: String, in place: String) -> String {
        let hint = Int(text.trimmingCharacters(in: .whitespaces)) != nil ? " (a unit is required: s, m, h, d or w)" : ""
        return "\(place) '\(text)' is not a duration such as 90m, 12h or 7d\(hint)"
    }
}
