/// A WAL position (PostgreSQL's `pg_lsn`, `XLogRecPtr`): a byte offset into the write-ahead log.
///
/// Printed and parsed in PostgreSQL's `X/Y` form: the high and low 32 bits in upper-case hexadecimal without
/// leading zeros (`16/B374D848`), the form `pg_lsn` prints and replication commands take. `0/0` is
/// `InvalidXLogRecPtr`, which replication commands read as "no position". Ordered by the offset.
public struct LSN: RawRepresentable, Sendable, Hashable, Comparable, LosslessStringConvertible {
    /// The 64-bit offset.
    public var rawValue: UInt64

    /// `0/0`: no position (`InvalidXLogRecPtr`).
    public static let invalid = LSN(rawValue: 0)

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    /// Parses `X/Y` (each half 1–8 hex digits, either case); nil for anything else (no spaces, no sign, no `0x`).
    public init?(_ description: String) {
        let utf8 = Array(description.utf8)
        guard let slash = utf8.firstIndex(of: UInt8(ascii: "/")),
            let high = Self.parseHex(utf8[..<slash]),
            let low = Self.parseHex(utf8[(slash + 1)...])
        else { return nil }
        rawValue = UInt64(high) << 32 | UInt64(low)
    }

    /// Parses `X/Y` or throws `malformedMessage` naming `what` (e.g. the server column it came from).
    public init(parsing text: String, what: String) throws(PostgresError) {
        guard let lsn = LSN(text) else {
            throw PostgresError(code: .malformedMessage, message: "\(what) is not an LSN (X/Y): \(text.prefix(40))")
        }
        self = lsn
    }

    /// `X/Y` in upper-case hexadecimal, as PostgreSQL prints it.
    public var description: String {
        String(UInt32(truncatingIfNeeded: rawValue >> 32), radix: 16, uppercase: true) + "/"
            + String(UInt32(truncatingIfNeeded: rawValue), radix: 16, uppercase: true)
    }

    public static func < (lhs: LSN, rhs: LSN) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The number of WAL bytes from `self` to `later` (0 when `later` is not after `self`).
    public func distance(to later: LSN) -> UInt64 {
        later.rawValue > rawValue ? later.rawValue - rawValue : 0
    }

    /// 1–8 hex digits as a UInt32; nil when empty, too long or not hex.
    private static func parseHex(_ digits: ArraySlice<UInt8>) -> UInt32? {
        guard !digits.isEmpty, digits.count <= 8 else { return nil }
        var value: UInt32 = 0
        for digit in digits {
            let nibble: UInt8
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = digit - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(nibble)
        }
        return value
    }
}
