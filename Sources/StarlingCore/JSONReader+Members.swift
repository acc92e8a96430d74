/// Reading a container element by element without building it (a pull page's entries straight into their fields).
extension JSONReader {
    /// Reads the object at `index` (no leading whitespace; `depth` counts its enclosing containers), calling `member`
    /// with each name and the reader at the value, which `member` must read or skip. Duplicate names are refused as
    /// the parser refuses them.
    mutating func readObject(
        depth: Int, _ member: (String, inout JSONReader) throws(CoreError) -> Void
    ) throws(CoreError) {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { throw error("expected an object") }
        try checkDepth(depth + 1)
        index += 1
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
            index += 1
            return
        }
        var seen: Set<String> = []
        while true {
            skipWhitespace()
            let keyOffset = index
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw error("expected '\"' to start a member name")
            }
            index += 1
            let key = try readStringBody()
            guard seen.insert(key).inserted else {
                throw CoreError(
                    code: .malformedJSON, message: "duplicate member name \"\(key)\" at byte \(keyOffset)",
                    offset: keyOffset)
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw error("expected ':' after member name")
            }
            index += 1
            skipWhitespace()
            try member(key, &self)
            skipWhitespace()
            guard index < bytes.count else { throw error("expected ',' or '}' in object") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return
            default: throw error("expected ',' or '}' in object")
            }
        }
    }

    /// Reads the array at `index` element by element, as ``readObject(depth:_:)`` does members.
    mutating func readArray(depth: Int, _ element: (Int, inout JSONReader) throws(CoreError) -> Void) throws(CoreError) {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "[") else { throw error("expected an array") }
        try checkDepth(depth + 1)
        index += 1
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
            index += 1
            return
        }
        var count = 0
        while true {
            skipWhitespace()
            try element(count, &self)
            count += 1
            skipWhitespace()
            guard index < bytes.count else { throw error("expected ',' or ']' in array") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                return
            default: throw error("expected ',' or ']' in array")
            }
        }
    }

    private func checkDepth(_ depth: Int) throws(CoreError) {
        guard depth <= maxDepth else {
            throw CoreError(
                code: .limitExceeded, message: "JSON nesting deeper than the limit of \(maxDepth) at byte \(index)",
                offset: index)
        }
    }
}
