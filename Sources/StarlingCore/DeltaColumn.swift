/// A counter column of a synced table (`hub.yaml`'s `delta: [qty, balance]`): on a conflict it becomes
/// `head + (after − before)` instead of either side's value, so concurrent increments in several regions all
/// count (see ``ConflictResolver``). Only integer and numeric columns qualify: their arithmetic is exact.
public enum DeltaColumn {
    /// The column types a delta column may have, with the range of the integer ones.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case smallint
        case integer
        case bigint
        case numeric

        /// The kind of a column whose `format_type` is `type` (as agents register it: `integer`,
        /// `numeric(12,2)`, …); `nil` for every type a delta cannot be exact for (`real`, `double precision`,
        /// `money`, text, …).
        public init?(formatType type: String) {
            switch type {
            case "smallint": self = .smallint
            case "integer": self = .integer
            case "bigint": self = .bigint
            default:
                guard type == "numeric" || (type.hasPrefix("numeric(") && type.hasSuffix(")")) else { return nil }
                self = .numeric
            }
        }

        /// The inclusive range of an integer kind; `nil` for `numeric` (unbounded here: a declared precision
        /// is PostgreSQL's to enforce when a region applies the row).
        public var range: ClosedRange<Int64>? {
            switch self {
            case .smallint: Int64(Int16.min)...Int64(Int16.max)
            case .integer: Int64(Int32.min)...Int64(Int32.max)
            case .bigint: Int64.min...Int64.max
            case .numeric: nil
            }
        }
    }

    /// The types a delta column may have, for error messages.
    public static let allowedTypes = "smallint, integer, bigint or numeric"
}
