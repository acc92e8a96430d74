/// An exact decimal number for counter arithmetic (delta columns): the value `unscaled × 10^-scale`, with the
/// unscaled magnitude held as base-10 digits, so neither a bigint beyond 2^53 nor a `numeric` with many
/// digits ever passes through `Double`.
///
/// Parses PostgreSQL's text form of integer and numeric values (`-12`, `0.50`, `123456789012345678901.25`);
/// refuses exponents, `NaN` and infinities (PostgreSQL never prints an exponent for these types, and a
/// non-finite counter has no exact difference). Addition and subtraction keep the larger scale of both sides,
/// as PostgreSQL's `numeric` does, so `1.50 + 1` is `2.50`.
public struct ExactDecimal: Sendable, Hashable {
    /// Whether the value is below zero (never true for zero).
    public private(set) var isNegative: Bool
    /// Digits of the unscaled magnitude, most significant first; no leading zeros (zero is `[]`).
    private var digits: [UInt8]
    /// Digits after the decimal point.
    public private(set) var scale: Int

    /// Most digits accepted on input: PostgreSQL's `numeric` has at most 131072 before and 16383 after the
    /// point; a counter anywhere near that is not a counter, and the bound keeps the arithmetic cheap.
    public static let maxDigits = 1000

    /// Parses `-?[0-9]+(\.[0-9]+)?`; `nil` for anything else (exponents, `NaN`, `Infinity`, empty, too long).
    public init?(_ text: String) {
        var bytes = Array(text.utf8)
        var negative = false
        if bytes.first == UInt8(ascii: "-") {
            negative = true
            bytes.removeFirst()
        }
        guard !bytes.isEmpty, bytes.count <= Self.maxDigits + 1 else { return nil }
        var integer: [UInt8] = []
        var fraction: [UInt8] = []
        var seenPoint = false
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard !seenPoint else { return nil }
                seenPoint = true
                continue
            }
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            if seenPoint { fraction.append(byte - UInt8(ascii: "0")) } else { integer.append(byte - UInt8(ascii: "0")) }
        }
        guard !integer.isEmpty, !seenPoint || !fraction.isEmpty else { return nil }
        self.init(isNegative: negative, digits: integer + fraction, scale: fraction.count)
    }

    private init(isNegative: Bool, digits: [UInt8], scale: Int) {
        let trimmed = Array(digits.drop { $0 == 0 })
        self.digits = trimmed
        self.isNegative = isNegative && !trimmed.isEmpty
        self.scale = scale
    }

    /// The exact sum.
    public static func + (a: ExactDecimal, b: ExactDecimal) -> ExactDecimal {
        let scale = max(a.scale, b.scale)
        let x = a.digitsAligned(to: scale)
        let y = b.digitsAligned(to: scale)
        if a.isNegative == b.isNegative {
            return ExactDecimal(isNegative: a.isNegative, digits: addMagnitudes(x, y), scale: scale)
        }
        // Opposite signs: the larger magnitude keeps its sign.
        if compareMagnitudes(x, y) >= 0 {
            return ExactDecimal(isNegative: a.isNegative, digits: subtractMagnitudes(x, y), scale: scale)
        }
        return ExactDecimal(isNegative: b.isNegative, digits: subtractMagnitudes(y, x), scale: scale)
    }

    /// The exact difference.
    public static func - (a: ExactDecimal, b: ExactDecimal) -> ExactDecimal {
        var negated = b
        negated.isNegative = !b.isNegative && !b.digits.isEmpty
        return a + negated
    }

    /// The value as an `Int64` when it has no fractional part (trailing zeros allowed) and fits; else `nil`.
    public var int64Value: Int64? {
        let integerCount = digits.count - scale
        if integerCount < 0 { return digits.isEmpty ? 0 : nil }
        guard digits[integerCount...].allSatisfy({ $0 == 0 }) else { return nil }
        var magnitude: UInt64 = 0
        for digit in digits[..<integerCount] {
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
            guard !o1, !o2 else { return nil }
            magnitude = sum
        }
        if isNegative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// PostgreSQL's text form: `-` when negative, at least one integer digit, exactly `scale` fraction digits.
    public var text: String {
        var padded = digits
        if padded.count <= scale { padded.insert(contentsOf: repeatElement(0, count: scale + 1 - padded.count), at: 0) }
        var bytes: [UInt8] = isNegative ? [UInt8(ascii: "-")] : []
        let integerCount = padded.count - scale
        bytes += padded[..<integerCount].map { $0 + UInt8(ascii: "0") }
        if scale > 0 {
            bytes.append(UInt8(ascii: "."))
            bytes += padded[integerCount...].map { $0 + UInt8(ascii: "0") }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The unscaled digits at `newScale >= scale`; zero stays `[]`, so no result has a leading zero.
    private func digitsAligned(to newScale: Int) -> [UInt8] {
        digits.isEmpty ? [] : digits + repeatElement(0, count: newScale - scale)
    }

    private static func compareMagnitudes(_ x: [UInt8], _ y: [UInt8]) -> Int {
        if x.count != y.count { return x.count < y.count ? -1 : 1 }
        for (a, b) in zip(x, y) where a != b { return a < b ? -1 : 1 }
        return 0
    }

    private static func addMagnitudes(_ x: [UInt8], _ y: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(max(x.count, y.count) + 1)
        var carry: UInt8 = 0
        var i = x.count - 1
        var j = y.count - 1
        while i >= 0 || j >= 0 || carry > 0 {
            let sum = (i >= 0 ? x[i] : 0) + (j >= 0 ? y[j] : 0) + carry
            result.append(sum % 10)
            carry = sum / 10
            i -= 1
            j -= 1
        }
        return result.reversed()
    }

    /// `x - y` for `x >= y`.
    private static func subtractMagnitudes(_ x: [UInt8], _ y: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(x.count)
        var borrow: Int = 0
        var j = y.count - 1
        for i in stride(from: x.count - 1, through: 0, by: -1) {
            var difference = Int(x[i]) - borrow - (j >= 0 ? Int(y[j]) : 0)
            borrow = difference < 0 ? 1 : 0
            if difference < 0 { difference += 10 }
            result.append(UInt8(difference))
            j -= 1
        }
        return result.reversed()
    }
}
