import Crypto

/// Comparisons of credentials whose time does not depend on where they differ, so a
/// client cannot find the token byte by byte by timing refusals.
enum ConstantTime {
    /// Compares the SHA-256 digests of both strings with no early exit: the digests have a
    /// fixed length, so not even the token's length leaks.
    static func equal(_ left: String, _ right: String) -> Bool {
        let a = SHA256.hash(data: Array(left.utf8))
        let b = SHA256.hash(data: Array(right.utf8))
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    /// Whether an `Authorization` header value is `Bearer <token>`.
    static func bearerMatches(_ header: String?, token: Secret) -> Bool {
        guard let header, header.hasPrefix("Bearer ") else { return false }
        return equal(String(header.dropFirst("Bearer ".count)), token.value)
    }
}
