/// One row of a `PostgresResult`, with typed accessors by column index or name.
///
/// Each accessor checks the column's type OID and throws `typeMismatch` when it is not one the accessor
/// decodes (`string` reads any type, as PostgreSQL's text form: use it for numeric, timestamptz, jsonb…).
/// Non-optional accessors throw `unexpectedNull` on SQL NULL; `optional…` accessors return nil instead.
public struct PostgresRow: Sendable {
    /// The result this row belongs to (shares its storage).
    public let result: PostgresResult
    /// The row's 0-based index in `result`.
    public let row: Int

    /// Type OIDs the accessors accept.
    enum TypeOID {
        static let bool: UInt32 = 16
        static let bytea: UInt32 = 17
        static let int8: UInt32 = 20
        static let int2: UInt32 = 21
        static let int4: UInt32 = 23
        static let oid: UInt32 = 26
        static let float4: UInt32 = 700
        static let float8: UInt32 = 701
    }

    /// True when the cell is SQL NULL.
    public func isNull(_ column: some PostgresColumnKey) throws(PostgresError) -> Bool {
        let index = try column.columnIndex(in: result.columns)
        return result.nulls[row * result.columns.count + index]
    }

    /// The cell's text form (any column type).
    public func string(_ column: some PostgresColumnKey) throws(PostgresError) -> String {
        try required(optionalString(column), column)
    }

    /// The cell's text form, or nil for NULL.
    public func optionalString(_ column: some PostgresColumnKey) throws(PostgresError) -> String? {
        try cell(column, accepting: nil) { bytes, _ throws(PostgresError) in String(decoding: bytes, as: UTF8.self) }
    }

    /// A bigint, integer, smallint or oid column.
    public func int64(_ column: some PostgresColumnKey) throws(PostgresError) -> Int64 {
        try required(optionalInt64(column), column)
    }

    public func optionalInt64(_ column: some PostgresColumnKey) throws(PostgresError) -> Int64? {
        try cell(column, accepting: [TypeOID.int8, TypeOID.int4, TypeOID.int2, TypeOID.oid]) {
            bytes, name throws(PostgresError) in
            guard let value = PostgresTextDecoding.int64(bytes) else { throw Self.malformed(bytes, "bigint", name) }
            return value
        }
    }

    /// An integer or smallint column.
    public func int32(_ column: some PostgresColumnKey) throws(PostgresError) -> Int32 {
        try required(optionalInt32(column), column)
    }

    public func optionalInt32(_ column: some PostgresColumnKey) throws(PostgresError) -> Int32? {
        try cell(column, accepting: [TypeOID.int4, TypeOID.int2]) { bytes, name throws(PostgresError) in
            guard let value = PostgresTextDecoding.int64(bytes), let narrow = Int32(exactly: value) else {
                throw Self.malformed(bytes, "integer", name)
            }
            return narrow
        }
    }

    /// A double precision or real column (numeric is not accepted: read it exactly with `string`).
    public func double(_ column: some PostgresColumnKey) throws(PostgresError) -> Double {
        try required(optionalDouble(column), column)
    }

    public func optionalDouble(_ column: some PostgresColumnKey) throws(PostgresError) -> Double? {
        try cell(column, accepting: [TypeOID.float8, TypeOID.float4]) { bytes, name throws(PostgresError) in
            guard let value = Double(String(decoding: bytes, as: UTF8.self)) else {
                throw Self.malformed(bytes, "double precision", name)
            }
            return value
        }
    }

    /// A boolean column.
    public func bool(_ column: some PostgresColumnKey) throws(PostgresError) -> Bool {
        try required(optionalBool(column), column)
    }

    public func optionalBool(_ column: some PostgresColumnKey) throws(PostgresError) -> Bool? {
        try cell(column, accepting: [TypeOID.bool]) { bytes, name throws(PostgresError) in
            switch bytes.first {
            case UInt8(ascii: "t") where bytes.count == 1: return true
            case UInt8(ascii: "f") where bytes.count == 1: return false
            default: throw Self.malformed(bytes, "boolean", name)
            }
        }
    }

    /// A bytea column, decoded from the `\x` hex text form.
    public func bytes(_ column: some PostgresColumnKey) throws(PostgresError) -> [UInt8] {
        try required(optionalBytes(column), column)
    }

    public func optionalBytes(_ column: some PostgresColumnKey) throws(PostgresError) -> [UInt8]? {
        try cell(column, accepting: [TypeOID.bytea]) { bytes, name throws(PostgresError) in
            guard let value = PostgresTextDecoding.hexBytes(bytes) else { throw Self.malformed(bytes, "bytea", name) }
            return value
        }
    }

    /// Looks the cell up, checks the type OID (nil accepts any) and decodes non-null cells.
    private func cell<T>(
        _ column: some PostgresColumnKey, accepting types: [UInt32]?,
        decode: (UnsafeBufferPointer<UInt8>, String) throws(PostgresError) -> T
    ) throws(PostgresError) -> T? {
        let index = try column.columnIndex(in: result.columns)
        let described = result.columns[index]
        if let types, !types.contains(described.typeOID) {
            throw PostgresError(
                code: .typeMismatch,
                message: "column \(described.name) has type OID \(described.typeOID), not one of \(types)")
        }
        let cell = row * result.columns.count + index
        if result.nulls[cell] { return nil }
        let range = result.offsets[cell]..<result.offsets[cell + 1]
        return try result.storage.withUnsafeBufferPointer { (all) throws(PostgresError) -> T in
            try decode(UnsafeBufferPointer(rebasing: all[range]), described.name)
        }
    }

    private func required<T>(_ value: T?, _ column: some PostgresColumnKey) throws(PostgresError) -> T {
        guard let value else {
            throw PostgresError(code: .unexpectedNull, message: "column \(column) is NULL")
        }
        return value
    }

    private static func malformed(_ bytes: UnsafeBufferPointer<UInt8>, _ type: String, _ column: String)
        -> PostgresError
    {
        PostgresError(code: .typeMismatch, message: "column \(column): cannot read \(bytes.count) bytes as \(type)")
    }
}

/// Decoders for PostgreSQL's text output format.
enum PostgresTextDecoding {
    /// A decimal integer with optional leading `-`, exactly as int8out writes it; nil on overflow or junk.
    static func int64(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        var index = 0
        let isNegative = bytes.first == UInt8(ascii: "-")
        if isNegative { index = 1 }
        guard index < bytes.count else { return nil }
        var value: Int64 = 0
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            // Accumulate negatively so Int64.min parses.
            let (next, overflow2) = shifted.subtractingReportingOverflow(Int64(digit))
            guard !overflow1, !overflow2 else { return nil }
            value = next
            index += 1
        }
        if isNegative { return value }
        return value == .min ? nil : -value
    }

    /// `\x0a1b…` → bytes; nil when not in hex format or a digit is invalid.
    static func hexBytes(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard text.count >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x"), text.count % 2 == 0
        else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((text.count - 2) / 2)
        var index = 2
        while index < text.count {
            guard let high = nibble(text[index]), let low = nibble(text[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
