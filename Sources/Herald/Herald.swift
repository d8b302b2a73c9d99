/// Herald's version, sent in `User-Agent` and reported by `--version` and `/stats`.
public enum Herald {
    public static let version = "0.1.0"
}
