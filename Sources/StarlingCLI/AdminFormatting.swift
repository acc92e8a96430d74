import Glibc
import StarlingCore

/// A plain-text table for terminals: a header row, columns padded to their widest cell, numbers right-aligned,
/// long cells cut with `…`. Pure; the caller prints ``render()``.
struct TextTable {
    enum Alignment { case left, right }

    var headers: [String]
    var alignments: [Alignment]
    var rows: [[String]] = []
    /// Longest cell, in characters, before it is cut.
    var maxCellWidth = 48

    init(_ columns: [(String, Alignment)]) {
        headers = columns.map(\.0)
        alignments = columns.map(\.1)
    }

    mutating func append(_ cells: [String]) {
        rows.append(cells.map { cell in
            let flat = cell.replacingNewlines()
            return flat.count > maxCellWidth ? String(flat.prefix(maxCellWidth - 1)) + "…" : flat
        })
    }

    func render() -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (index, cell) in cells.enumerated() where index < widths.count {
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                let isLast = index == widths.count - 1
                switch alignments[index] {
                case .right: parts.append(padding + cell)
                case .left: parts.append(isLast ? cell : cell + padding)
                }
            }
            return parts.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n") + "\n"
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        String(map { $0 == "\n" || $0 == "\r" || $0 == "\t" ? " " : $0 })
    }
}

/// Time helpers for the hub's ISO 8601 UTC timestamps (`2025-11-24T10:00:00.123456Z`), without Foundation.
enum AdminTime {
    /// Microseconds since the epoch now.
    static func nowMicros() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`; nil for anything else.
    static func micros(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                value = value * 10 + Int64(digit)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var fraction: Int64 = 0
        if bytes[19] == UInt8(ascii: ".") {
            let digits = bytes.count - 21
            guard digits > 0, let value = number(20..<(bytes.count - 1)) else { return nil }
            fraction = value
            for _ in digits..<6 { fraction *= 10 }
            for _ in 6..<max(6, digits) { fraction /= 10 }
        }
        let days = daysFromCivil(year: year, month: month, day: day)
        return ((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + fraction
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// "12s ago", "3m ago", "never".
    static func age(_ text: String?, now: Int64) -> String {
        guard let text, let micros = micros(text) else { return "never" }
        let seconds = max(0, (now - micros) / 1_000_000)
        switch seconds {
        case ..<60: return "\(seconds)s ago"
        case ..<3600: return "\(seconds / 60)m ago"
        case ..<86400: return "\(seconds / 3600)h ago"
        default: return "\(seconds / 86400)d ago"
        }
    }
}

/// Region health as the dashboard shows it: `silent` when the hub has not heard from the region (push or pull)
/// for 60 s or ever, `lagging` when its oldest unpulled entry is older than 10 s, else `healthy`.
enum RegionHealth {
    static let silentAfterSeconds: Int64 = 60
    static let laggingAfterSeconds: Double = 10

    static func state(_ region: JSONValue, now: Int64) -> String {
        let push = region["last_push_at"]?.stringValue.flatMap(AdminTime.micros) ?? 0
        let pull = region["last_pull_at"]?.stringValue.flatMap(AdminTime.micros) ?? 0
        let last = max(push, pull)
        if last == 0 || now - last > silentAfterSeconds * 1_000_000 { return "silent" }
        if let lag = region["lag_seconds"]?.numberText.flatMap(Double.init), lag > laggingAfterSeconds {
            return "lagging"
        }
        return "healthy"
    }
}

extension JSONValue {
    /// Compact text for a table cell: strings bare, null as `-`, the rest as JSON.
    var cellText: String {
        switch self {
        case .null: return "-"
        case .string(let text): return text
        case .number(let text): return text
        default: return String(decoding: serialized(), as: UTF8.self)
        }
    }

    /// The value as JSON text.
    var jsonText: String { String(decoding: serialized(), as: UTF8.self) }
}
