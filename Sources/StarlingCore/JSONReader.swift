/// The cursor behind ``JSONParser``: a recursive-descent reader over borrowed bytes.
///
/// Lives only for one `parse` call; `bytes` must outlive it (the parser guarantees this by scoping).
struct JSONReader {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var index = 0
    /// Members whose values are skipped, not built: by name, at one object depth (``JSONParser/parse(_:keepingRaw:atDepth:)``).
    /// Each such value is `.null` in the result and its byte range is in `rawRanges`, in document order.
    var rawMember: (name: String, depth: Int)?
    var rawRanges: [Range<Int>] = []
    /// The most members seen in one object per nesting depth: the capacity a new object at that depth starts
    /// with (arrays of alike objects, such as a push's changes, then build their dictionaries without regrowing).
    private var objectSizeHints: [Int] = Array(repeating: 0, count: 8)

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    // MARK: Errors

    /// A `.malformedJSON` error at the current offset, naming what was found there.
    func error(_ expected: String, at offset: Int? = nil) -> CoreError {
        let at = offset ?? index
        let found: String
        if at >= bytes.count {
            found = "end of input"
        } else {
            let byte = bytes[at]
            found =
                byte >= 0x20 && byte < 0x7F
                ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16, uppercase: true))"
        }
        return CoreError(code: .malformedJSON, message: "\(expected) at byte \(at), found \(found)", offset: at)
    }

    // MARK: Values

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    /// Reads one value starting at `index` (no leading whitespace). `depth` counts enclosing containers.
    mutating func readValue(depth: Int) throws(CoreError) -> JSONValue {
        guard index < bytes.count else { throw error("expected a value") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try readObject(depth: depth + 1)
        case UInt8(ascii: "["): return try readArray(depth: depth + 1)
        case UInt8(ascii: "\""):
            index += 1
            return .string(try readStringBody())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try readNumber())
        default:
            throw error("expected a value")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(CoreError) {
        let start = index
        let count = literal.utf8CodeUnitCount
        for offset in 0..<count {
            guard index < bytes.count, bytes[index] == literal.utf8Start[offset] else {
                throw error("expected '\(literal)' (starting at byte \(start))")
            }
            index += 1
        }
    }

    mutating func enter(_ depth: Int) throws(CoreError) {
        guard depth <= maxDepth else {
            throw CoreError(
                code: .limitExceeded, message: "JSON nesting deeper than the limit of \(maxDepth) at byte \(index)",
                offset: index)
        }
    }

    private mutating func readArray(depth: Int) throws(CoreError) -> JSONValue {
        var elements: [JSONValue] = []
        try readElements(depth: depth) { _, reader throws(CoreError) in elements.append(try reader.readValue(depth: depth)) }
        return .array(elements)
    }

    private mutating func readObject(depth: Int) throws(CoreError) -> JSONValue {
        var members = JSONObject(minimumCapacity: depth < objectSizeHints.count ? objectSizeHints[depth] : 0)
        try readMembers(depth: depth) { key, keyOffset, reader throws(CoreError) in
            let value: JSONValue
            if let raw = reader.rawMember, raw.depth == depth, raw.name == key {
                let start = reader.index
                try reader.skipValue(depth: depth)
                reader.rawRanges.append(start..<reader.index)
                value = .null
            } else {
                value = try reader.readValue(depth: depth)
            }
            guard members.updateValue(value, forKey: key) == nil else { throw reader.duplicate(key, at: keyOffset) }
        }
        if depth < objectSizeHints.count && members.count > objectSizeHints[depth] {
            objectSizeHints[depth] = members.count
        }
        return .object(members)
    }

    /// Steps over one value starting at `index` with the same checks as ``readValue(depth:)`` but builds
    /// nothing (member names of skipped objects are not checked for duplicates).
    mutating func skipValue(depth: Int) throws(CoreError) {
        guard index < bytes.count else { throw error("expected a value") }
        switch bytes[index] {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let isObject = bytes[index] == UInt8(ascii: "{")
            let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
            try enter(depth + 1)
            index += 1
            skipWhitespace()
            if index < bytes.count && bytes[index] == close {
                index += 1
                return
            }
            while true {
                skipWhitespace()
                if isObject {
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                        throw error("expected '\"' to start a member name")
                    }
                    index += 1
                    try skipStringBody()
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                        throw error("expected ':' after member name")
                    }
                    index += 1
                    skipWhitespace()
                }
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard index < bytes.count else { throw error("expected ',' or a closing bracket") }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == close {
                    index += 1
                    return
                } else {
                    throw error("expected ',' or a closing bracket")
                }
            }
        case UInt8(ascii: "\""):
            index += 1
            try skipStringBody()
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try scanNumber()
        default: throw error("expected a value")
        }
    }

    // MARK: Numbers

    /// Reads `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` and returns its exact text.
    private mutating func readNumber() throws(CoreError) -> String {
        let start = index
        try scanNumber()
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    }

    /// Reads a value that should be an integer: a number or a decimal string, as ``JSONValue/int64Value`` takes
    /// them, without building the value (a pull page's `seq` and `hlc`). Nil for any other value (read and checked
    /// all the same), a fraction, an exponent or more than 64 bits.
    mutating func readInt64(depth: Int) throws(CoreError) -> Int64? {
        guard index < bytes.count else { throw error("expected a value") }
        switch bytes[index] {
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let start = index
            try scanNumber()
            return JSONValue.parseInt64(utf8: bytes[start..<index])
        case UInt8(ascii: "\""):
            index += 1
            return JSONValue.parseInt64(try readStringBody())
        default:
            _ = try readValue(depth: depth)  // built, so that it is checked as the tree parser checks it
            return nil
        }
    }

    /// Steps over a number (the grammar of ``readNumber()``).
    mutating func scanNumber() throws(CoreError) {
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw error("expected a digit in number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count && isDigit(bytes[index]) {
                throw error("expected '.', 'e' or the end of the number after a leading zero")
            }
        } else {
            skipDigits()
        }
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("expected a digit after '.'") }
            skipDigits()
        }
        if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) {
                index += 1
            }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("expected a digit in exponent") }
            skipDigits()
        }
    }

    @inline(__always)
    private func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    private mutating func skipDigits() {
        while index < bytes.count && isDigit(bytes[index]) { index += 1 }
    }
}
