/// Writes JSON as canonical UTF-8 bytes: object members sorted by the UTF-8 bytes of their names, no
/// insignificant whitespace, numbers verbatim, strings escaped minimally (`"`, `\` and control characters;
/// everything else, including non-ASCII, as raw UTF-8). The same ``JSONValue`` always gives the same bytes.
///
/// The static `write…` helpers let wire types write themselves without building a ``JSONValue`` first; they
/// must produce exactly the bytes that serializing the equivalent value would.
public enum JSONSerializer {
    /// Appends `value` to `output`.
    public static func write(_ value: JSONValue, to output: inout [UInt8]) {
        write(value, to: &output, sorted: true)
    }

    /// Appends `value` with every object's members in the dictionary's own order: the same JSON value, not the
    /// canonical bytes. For request bodies, which the receiver parses and nobody compares byte for byte (sorting
    /// every image's names was a visible share of an agent's push).
    public static func writeUnordered(_ value: JSONValue, to output: inout [UInt8]) {
        write(value, to: &output, sorted: false)
    }

    private static func write(_ value: JSONValue, to output: inout [UInt8], sorted: Bool) {
        switch value {
        case .null: writeNull(to: &output)
        case .bool(let flag): output.append(contentsOf: flag ? trueBytes : falseBytes)
        case .number(let text):
            assert(isValidNumberText(text), "JSONValue.number holds invalid number text \(text)")
            output.append(contentsOf: text.utf8)
        case .string(let text): writeString(text, to: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                write(element, to: &output, sorted: sorted)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            guard !sorted else {
                writeObject(members, to: &output)
                return
            }
            output.append(UInt8(ascii: "{"))
            for (position, member) in members.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                writeMember(member.key, member.value, to: &output, sorted: false)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Appends `members` as an object, sorted by name.
    public static func writeObject(_ members: JSONObject, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "{"))
        // A one-member object (most keys) needs no sort; the others sort their pairs, not names to look up again.
        if members.count == 1, let (name, value) = members.first {
            writeMember(name, value, to: &output)
        } else {
            let pairs = members.sorted { namePrecedes($0.key, $1.key) }
            for (position, pair) in pairs.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                writeMember(pair.key, pair.value, to: &output)
            }
        }
        output.append(UInt8(ascii: "}"))
    }

    private static func writeMember(_ name: String, _ value: JSONValue, to output: inout [UInt8], sorted: Bool = true) {
        writeString(name, to: &output)
        output.append(UInt8(ascii: ":"))
        write(value, to: &output, sorted: sorted)
    }

    /// `members`' names in canonical order: by their UTF-8 bytes.
    public static func sortedNames(_ members: JSONObject) -> [String] {
        members.keys.sorted(by: namePrecedes)
    }

    /// Whether `a`'s UTF-8 bytes sort before `b`'s: the canonical order of member names. Compares the bytes in
    /// place (`utf8.lexicographicallyPrecedes` walked them through the generic collection path, a visible share of
    /// a push's time at the hub and the agent).
    public static func namePrecedes(_ a: String, _ b: String) -> Bool {
        var a = a
        var b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                for index in 0..<min(x.count, y.count) where x[index] != y[index] { return x[index] < y[index] }
                return x.count < y.count
            }
        }
    }

    public static func writeNull(to output: inout [UInt8]) {
        output.append(contentsOf: nullBytes)
    }

    /// Appends `value` in decimal without allocating.
    public static func writeInt64(_ value: Int64, to output: inout [UInt8]) {
        if value < 0 { output.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch, enough for 20 digits
        withUnsafeMutableBytes(of: &digits) { scratch in
            var position = scratch.count
            repeat {
                position -= 1
                scratch[position] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            output.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[position...]))
        }
    }

    /// Appends `text` as a JSON string with minimal escaping.
    public static func writeString(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            var runStart = 0
            for (position, byte) in utf8.enumerated() where byte < 0x20 || byte == 0x22 || byte == 0x5C {
                output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<position]))
                appendEscape(byte, to: &output)
                runStart = position + 1
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        output.append(UInt8(ascii: "\""))
    }

    private static func appendEscape(_ byte: UInt8, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\\"))
        switch byte {
        case 0x22: output.append(0x22)
        case 0x5C: output.append(0x5C)
        case 0x08: output.append(UInt8(ascii: "b"))
        case 0x0C: output.append(UInt8(ascii: "f"))
        case 0x0A: output.append(UInt8(ascii: "n"))
        case 0x0D: output.append(UInt8(ascii: "r"))
        case 0x09: output.append(UInt8(ascii: "t"))
        default:
            output.append(UInt8(ascii: "u"))
            output.append(UInt8(ascii: "0"))
            output.append(UInt8(ascii: "0"))
            output.append(hexDigit(byte >> 4))
            output.append(hexDigit(byte & 0xF))
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// Whether `text` matches RFC 8259's `number` grammar exactly.
    public static func isValidNumberText(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { buffer in
            var reader = JSONReader(bytes: buffer, maxDepth: 0)
            guard case .number? = try? reader.readValue(depth: 0) else { return false }
            return reader.index == buffer.count
        }
    }

    private static let nullBytes: [UInt8] = Array("null".utf8)
    private static let trueBytes: [UInt8] = Array("true".utf8)
    private static let falseBytes: [UInt8] = Array("false".utf8)
}

extension JSONValue {
    /// The canonical bytes of this value (see ``JSONSerializer``).
    public func serialized() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(64)
        JSONSerializer.write(self, to: &output)
        return output
    }

    /// This value as JSON with members unordered (``JSONSerializer/writeUnordered(_:to:)``): for request bodies.
    public func unorderedBytes() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        JSONSerializer.writeUnordered(self, to: &output)
        return output
    }

    /// The canonical text of this value.
    public var canonicalText: String {
        String(decoding: serialized(), as: UTF8.self)
    }
}
