/// The valid name a misspelt one most likely meant, for "did you mean" hints on unknown
/// configuration keys and `HERALD_*` variables.
enum ClosestName {
    /// The candidate at the smallest edit distance from `name` (case-insensitive), when that
    /// distance is small enough to be a typo: at most a third of the name's length, and at
    /// least 2 for short names. Ties go to the first candidate in sorted order, so the hint
    /// is the same on every run.
    static func suggestion(for name: String, among candidates: some Sequence<String>) -> String? {
        let limit = max(2, name.count / 3)
        var best: (name: String, distance: Int)?
        for candidate in candidates.sorted() {
            let distance = editDistance(name.lowercased(), candidate.lowercased())
            if distance <= limit, distance < best?.distance ?? .max { best = (candidate, distance) }
        }
        return best?.name
    }

    /// Levenshtein distance (insert, delete, substitute), one row at a time.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
