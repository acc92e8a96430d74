import StarlingHTTP2

/// Whether the agent's traffic with the hub is gzip-compressed (`compression:` in agent.yaml).
///
/// Compression trades CPU for bytes: a pull page of 5,000 entries shrinks about 5.5× (1.47 MB to 264 KB at
/// zlib's level 1) for about 5 ms of the hub's CPU per reader and 2–3 ms of the agent's to inflate it. Between
/// regions that is worth it; on one machine (an agent beside its hub, the benchmarks) bytes cost nothing and
/// zlib was 5–6 % of the whole machine's CPU in W1 R=3 (both sides), so `auto` leaves loopback uncompressed.
public enum HubCompression: String, Sendable, Hashable, CaseIterable, Decodable {
    /// gzip unless the hub URL's host is a loopback address (`localhost`, `127.0.0.0/8`, `::1`).
    case auto
    /// Push bodies from 1 KiB gzip-encoded, and the hub asked to compress its large answers.
    case gzip
    /// Nothing compressed either way.
    case none

    /// Whether requests to `url` (`http(s)://host:port`) are compressed under this setting.
    public func compresses(url: String) -> Bool {
        switch self {
        case .gzip: true
        case .none: false
        case .auto: !HTTP2ClientConfiguration(baseURL: url).isLoopback
        }
    }
}
