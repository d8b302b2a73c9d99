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

    /// A duration for people: `45s`, `3m20s`, `2h05m`.
    public static func describe(seconds: Int) -> String {
        if seconds < 60 { return "\(max(0, seconds))s" }
        if seconds < 3600 { return "\(seconds / 60)m\(String(format: "%02d", seconds % 60))s" }
        return "\(seconds / 3600)h\(String(format: "%02d", seconds % 3600 / 60))m"
    }

    /// A duration as a setting would be written: in the largest unit up to days that divides
    /// it exactly (`1d`, `90m`, `14d`; weeks are rarely what a file says), so a summary shows
    /// what the file says.
    public static func setting(seconds: Int) -> String {
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] where seconds >= size && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }

    /// The message for text that is not a duration, naming where it came from.
    public static func problem(_ text: String, in place: String) -> String {
        let hint = Int(text.trimmingCharacters(in: .whitespaces)) != nil ? " (a unit is required: s, m, h, d or w)" : ""
        return "\(place) '\(text)' is not a duration such as 90m, 12h or 7d\(hint)"
    }
}
