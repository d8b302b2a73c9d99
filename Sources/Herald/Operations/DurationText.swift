/// Durations as people type them: `90s`, `15m`, `12h`, `7d`, `2w` (a bare number is seconds).
public enum DurationText {
    public static func seconds(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard let unit = trimmed.last else { return nil }
        let multipliers: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
        if let multiplier = multipliers[unit], let value = Int(trimmed.dropLast()), value >= 0 {
            return value * multiplier
        }
        if let value = Int(trimmed), value >= 0 { return value }
        return nil
    }
}
