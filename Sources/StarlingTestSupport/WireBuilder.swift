public import StarlingPostgres

/// Builds wire bytes the way the server does: big-endian integers, NUL-terminated strings (a class, so calls
/// chain).
public final class WireBuilder {
    public var bytes: [UInt8] = []

    public init(_ tag: Character) { bytes.append(UInt8(ascii: tag.unicodeScalars.first!)) }

    @discardableResult public func u8(_ value: UInt8) -> Self {
        bytes.append(value)
        return self
    }
    @discardableResult public func tag(_ value: Character) -> Self {
        u8(UInt8(ascii: value.unicodeScalars.first!))
    }
    @discardableResult public func i16(_ value: Int16) -> Self {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
        return self
    }
    @discardableResult public func i32(_ value: Int32) -> Self {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
        return self
    }
    @discardableResult public func u32(_ value: UInt32) -> Self {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
        return self
    }
    @discardableResult public func i64(_ value: Int64) -> Self {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
        return self
    }
    @discardableResult public func string(_ value: String) -> Self {
        bytes.append(contentsOf: value.utf8)
        return u8(0)
    }
    @discardableResult public func raw(_ value: [UInt8]) -> Self {
        bytes.append(contentsOf: value)
        return self
    }
    /// TupleData: `nil` → 'n', `.unchangedToast` → 'u', `.text` → 't', `.binary` → 'b'.
    @discardableResult public func tuple(_ values: [PgOutputValue]) -> Self {
        i16(Int16(values.count))
        for value in values {
            switch value {
            case .null: tag("n")
            case .unchangedToast: tag("u")
            case .text(let text): tag("t").i32(Int32(text.utf8.count)).raw(Array(text.utf8))
            case .binary(let bytes): tag("b").i32(Int32(bytes.count)).raw(bytes)
            }
        }
        return self
    }
}
