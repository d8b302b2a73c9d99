/// Whether a host name or literal address can only mean this machine: `localhost`, an IPv4
/// literal in 127.0.0.0/8 written as four decimal octets, or `::1`. Nothing that merely
/// starts like one: `127.0.0.1.evil.example` is a DNS name anyone can point anywhere, which
/// is how a DNS-rebinding page would reach a token-less listener.
enum LoopbackName {
    static func isLoopback(host: String) -> Bool {
        let host = host.lowercased()
        if host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return false }
        for octet in octets {
            guard (1...3).contains(octet.count), octet.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = Int(octet), value <= 255
            else { return false }
        }
        return octets[0] == "127"
    }
}
