/// Parses the RFC 3339 times `hub.yaml` takes (`2026-12-01T00:00:00Z`, `2026-12-01T02:00:00.5+02:00`) into
/// microseconds since the Unix epoch. Strict: four-digit year, a `T` (or `t`, or a space), seconds required, an
/// optional fraction (up to 9 digits, truncated to microseconds), and `Z` or a `±HH:MM` offset. No leap seconds.
enum RFC3339 {
    static func microseconds(_ text: String) -> Int64? {
        var reader = DigitReader(bytes: Array(text.utf8))
        guard let year = reader.number(4), reader.skip("-"), let month = reader.number(2), reader.skip("-"),
            let day = reader.number(2), reader.skipAny(["T", "t", " "]), let hour = reader.number(2),
            reader.skip(":"), let minute = reader.number(2), reader.skip(":"), let second = reader.number(2)
        else { return nil }
        guard (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day), hour < 24,
            minute < 60, second < 60
        else { return nil }
        var micros: Int64 = 0
        if reader.skip(".") {
            var digits = 0
            while let digit = reader.number(1) {
                if digits < 6 { micros = micros * 10 + Int64(digit) }
                digits += 1
            }
            guard (1...9).contains(digits) else { return nil }
            for _ in digits..<6 where digits < 6 { micros *= 10 }
        }
        var offsetSeconds: Int64 = 0
        if reader.skipAny(["Z", "z"]) {
            offsetSeconds = 0
        } else if let sign = reader.take(["+", "-"]), let oh = reader.number(2), reader.skip(":"),
            let om = reader.number(2), oh < 24, om < 60
        {
            offsetSeconds = Int64(oh * 3600 + om * 60) * (sign == UInt8(ascii: "-") ? -1 : 1)
        } else {
            return nil
        }
        guard reader.isAtEnd else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - offsetSeconds
        return seconds * 1_000_000 + micros
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// A cursor over ASCII bytes.
    private struct DigitReader {
        let bytes: [UInt8]
        var index = 0

        var isAtEnd: Bool { index == bytes.count }

        /// Exactly `count` decimal digits as a number, or nil (and nothing consumed).
        mutating func number(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + count] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            index += count
            return value
        }

        mutating func skip(_ character: Unicode.Scalar) -> Bool { take([character]) != nil }

        mutating func skipAny(_ characters: [Unicode.Scalar]) -> Bool { take(characters) != nil }

        /// Consumes the next byte when it is one of `characters` and returns it.
        mutating func take(_ characters: [Unicode.Scalar]) -> UInt8? {
            guard index < bytes.count, characters.contains(where: { UInt8(ascii: $0) == bytes[index] }) else {
                return nil
            }
            index += 1
            return bytes[index - 1]
        }
    }
}
