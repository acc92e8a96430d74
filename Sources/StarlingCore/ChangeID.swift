/// A change's (or an origin transaction's) id on the wire: `"<origin>:<number>"`, the region that captured it and
/// a number unique within that region — an outbox id or `txid_current()` under trigger capture, a WAL position with
/// bit 62 set under WAL capture. The one encoder (``description``) and decoder (``init(_:)``) of that form.
public struct ChangeID: Hashable, Sendable, CustomStringConvertible {
    public var origin: String
    public var number: Int64

    public init(origin: String, number: Int64) {
        self.origin = origin
        self.number = number
    }

    /// Parses `"<origin>:<number>"` (split at the last colon); nil for any other form (ids of the hub's own
    /// entries, such as repairs, and of clients that number their changes otherwise).
    public init?(_ text: some StringProtocol) {
        let text = Substring(text)
        // The colon is found among the UTF-8 bytes (Character-wise, parsing ids was a visible share of a
        // sequencer commit, which reads every pushed change's).
        let utf8 = text.utf8
        guard let colon = utf8.lastIndex(of: UInt8(ascii: ":")), colon != utf8.startIndex,
            let number = Int64(Substring(utf8[utf8.index(after: colon)...]))
        else { return nil }
        self.init(origin: String(text[..<colon]), number: number)
    }

    /// Concatenated rather than interpolated: the WAL decoder makes an id for every change it captures.
    public var description: String { origin + ":" + String(number) }
}
