/// String bodies: UTF-8 validation, escapes and surrogate pairs.
extension JSONReader {
    /// Reads the rest of a string whose opening quote was consumed, up to and including the closing quote.
    ///
    /// Fast path: a run without escapes is validated in place and decoded once. The first backslash moves
    /// to a scratch buffer that receives the decoded bytes.
    mutating func readStringBody() throws(CoreError) -> String {
        let start = index
        if let end = try plainStringEnd() {
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
        var scratch = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<index]))
        return try readEscapedRest(into: &scratch)
    }

    /// Steps over the rest of a string whose opening quote was consumed, with the checks of ``readStringBody()``, as
    /// far as its closing quote or its first escape: at the quote, returns where the string's bytes end and moves
    /// past the quote; at an escape, returns nil and stays there.
    mutating func plainStringEnd() throws(CoreError) -> Int? {
        let start = index
        while index < bytes.count {
            index = plainRunEnd(from: index)
            guard index < bytes.count else { break }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return index - 1
            }
            if byte == UInt8(ascii: "\\") { return nil }
            try advanceOverCharacter(byte)
        }
        throw error("expected '\"' to end the string (started at byte \(start - 1))")
    }

    /// Steps over the rest of a string whose opening quote was consumed, with the checks of
    /// ``readStringBody()``, building nothing but an escape's few bytes.
    mutating func skipStringBody() throws(CoreError) {
        let start = index
        var scratch: [UInt8] = []
        while index < bytes.count {
            index = plainRunEnd(from: index)
            guard index < bytes.count else { break }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return
            }
            if byte == UInt8(ascii: "\\") {
                try readEscape(into: &scratch)
                scratch.removeAll(keepingCapacity: true)
                continue
            }
            try advanceOverCharacter(byte)
        }
        throw error("expected '\"' to end the string (started at byte \(start - 1))")
    }

    /// The first index at or after `start` whose byte is not printable ASCII other than `"` and `\`: eight bytes a
    /// step, where most of a string's bytes are (a pulled page is mostly its images' strings). A byte it stops at may
    /// be fine; the caller's byte-wise loop decides.
    @inline(__always)
    func plainRunEnd(from start: Int) -> Int {
        guard let base = bytes.baseAddress else { return start }
        let raw = UnsafeRawPointer(base)
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        var at = start
        while at + 8 <= bytes.count {
            let word = raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)
            let control = (word &- ones &* 0x20) & ~word
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            let found = word | control | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
            if found & high != 0 { break }
            at += 8
        }
        return at
    }

    /// Continues a string that contains escapes, decoding into `scratch`.
    private mutating func readEscapedRest(into scratch: inout [UInt8]) throws(CoreError) -> String {
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: scratch, as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") {
                try readEscape(into: &scratch)
                continue
            }
            let characterStart = index
            try advanceOverCharacter(byte)
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[characterStart..<index]))
        }
        throw error("expected '\"' to end the string (escape seen at byte \(start))")
    }

    /// Steps over one unescaped character starting with `byte`, validating it.
    @inline(__always)
    private mutating func advanceOverCharacter(_ byte: UInt8) throws(CoreError) {
        if byte < 0x20 {
            throw error("expected an escape instead of a control character in string")
        }
        if byte < 0x80 {
            index += 1
        } else {
            index += try validUTF8SequenceLength(at: index)
        }
    }

    /// Length of the well-formed UTF-8 sequence at `offset` (RFC 3629 table 3-7), or an error.
    private func validUTF8SequenceLength(at offset: Int) throws(CoreError) -> Int {
        let lead = bytes[offset]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            high = 0x9F
        case 0xF0:
            length = 4
            low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            high = 0x8F
        default: throw invalidUTF8(at: offset)
        }
        guard offset + length <= bytes.count else { throw invalidUTF8(at: offset) }
        let second = bytes[offset + 1]
        guard second >= low && second <= high else { throw invalidUTF8(at: offset) }
        for continuation in (offset + 2)..<(offset + length) where bytes[continuation] & 0xC0 != 0x80 {
            throw invalidUTF8(at: offset)
        }
        return length
    }

    private func invalidUTF8(at offset: Int) -> CoreError {
        CoreError(code: .malformedJSON, message: "invalid UTF-8 sequence at byte \(offset)", offset: offset)
    }

    /// Decodes the escape at `index` (which holds the backslash) into `scratch`.
    private mutating func readEscape(into scratch: inout [UInt8]) throws(CoreError) {
        let escapeStart = index
        index += 1
        guard index < bytes.count else { throw error("expected an escape character after '\\'") }
        let decoded: UInt8
        switch bytes[index] {
        case UInt8(ascii: "\""): decoded = UInt8(ascii: "\"")
        case UInt8(ascii: "\\"): decoded = UInt8(ascii: "\\")
        case UInt8(ascii: "/"): decoded = UInt8(ascii: "/")
        case UInt8(ascii: "b"): decoded = 0x08
        case UInt8(ascii: "f"): decoded = 0x0C
        case UInt8(ascii: "n"): decoded = 0x0A
        case UInt8(ascii: "r"): decoded = 0x0D
        case UInt8(ascii: "t"): decoded = 0x09
        case UInt8(ascii: "u"):
            index += 1
            let scalar = try readUnicodeEscape(escapeStart: escapeStart)
            appendUTF8(scalar, to: &scratch)
            return
        default:
            throw error("expected one of '\"\\/bfnrtu' after '\\'")
        }
        index += 1
        scratch.append(decoded)
    }

    /// Reads the four hex digits after `\u` (and a low surrogate's `\uXXXX` when the first is a high one).
    private mutating func readUnicodeEscape(escapeStart: Int) throws(CoreError) -> UInt32 {
        let first = try readHex4()
        switch first {
        case 0xDC00...0xDFFF:
            throw CoreError(
                code: .malformedJSON, message: "unpaired low surrogate \\u escape at byte \(escapeStart)",
                offset: escapeStart)
        case 0xD800...0xDBFF:
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            else {
                throw error("expected a '\\u' low surrogate after the high surrogate at byte \(escapeStart)")
            }
            index += 2
            let second = try readHex4()
            guard (0xDC00...0xDFFF).contains(second) else {
                throw error("expected a low surrogate (DC00-DFFF) after the high surrogate", at: index - 4)
            }
            return 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        default:
            return first
        }
    }

    private mutating func readHex4() throws(CoreError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard index < bytes.count else { throw error("expected a hex digit in \\u escape") }
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("expected a hex digit in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private func appendUTF8(_ scalar: UInt32, to scratch: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | scalar >> 6))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | scalar >> 12))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | scalar >> 18))
            scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        }
    }
}
