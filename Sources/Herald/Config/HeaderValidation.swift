/// Header names and values checked at load, so a configured value can never smuggle a
/// second header (`a\r\nInjected: yes`) or cut a request short (NUL) on the wire.
enum HeaderValidation {
    /// RFC 9110 `token`: what a field name may be.
    static func isToken(_ name: String) -> Bool {
        name.wholeMatch(of: /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/) != nil
    }

    /// CR, LF and NUL end or split a header line; nothing else is refused (obs-text is legal).
    static func forbiddenCharacter(in value: String) -> String? {
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\r": return "a carriage return (CR)"
            case "\n": return "a line feed (LF)"
            case "\0": return "a NUL byte"
            default: continue
            }
        }
        return nil
    }

    /// The problem with a header, worded to name the header and its owner (`trigger 'x'`, or
    /// `alerts`); nil when fine. The value itself is never quoted: it may be a secret.
    static func problem(name: String, value: String, owner: String) -> String? {
        guard isToken(name) else {
            return "header name '\(name.debugDescription.dropFirst().dropLast())' of \(owner) is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)"
        }
        if let character = forbiddenCharacter(in: value) {
            return "header '\(name)' of \(owner) has a value containing \(character), which would corrupt the request"
        }
        return nil
    }
}
