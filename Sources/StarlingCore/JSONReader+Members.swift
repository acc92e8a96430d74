/// Containers read element by element: the tree builder's objects and arrays, and readers that fill their own
/// fields straight from the bytes (a pull page's entries).
extension JSONReader {
    /// Reads the object at `index` (its own nesting `depth`), calling `member` with each name, the name's offset
    /// and the reader at the value, which `member` must read or skip. Duplicate names are the caller's to refuse
    /// (``duplicate(_:at:)``): the tree builder finds them as it inserts.
    mutating func readMembers(
        depth: Int, _ member: (String, Int, inout JSONReader) throws(CoreError) -> Void
    ) throws(CoreError) {
        try readMembers(depth: depth, names: { name, offset, reader throws(CoreError) in
            try member(String(decoding: name, as: UTF8.self), offset, &reader)
        })
    }

    /// ``readMembers(depth:_:)`` with each name as its UTF-8 bytes (escapes decoded), valid during the call: a
    /// reader that knows its names compares bytes and makes no `String` of them (``LogEntry``'s reader: twelve names
    /// an entry, in every page an agent pulls).
    mutating func readMembers(
        depth: Int, names member: (UnsafeBufferPointer<UInt8>, Int, inout JSONReader) throws(CoreError) -> Void
    ) throws(CoreError) {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { throw error("expected an object") }
        try enter(depth)
        index += 1
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            let keyOffset = index
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw error("expected '\"' to start a member name")
            }
            index += 1
            let nameStart = index
            let plainEnd = try plainStringEnd()
            var escaped: [UInt8] = []
            if plainEnd == nil {
                index = nameStart
                escaped = Array(try readStringBody().utf8)
            }
            func value(_ reader: inout JSONReader, _ name: UnsafeBufferPointer<UInt8>) throws(CoreError) {
                reader.skipWhitespace()
                guard reader.index < reader.bytes.count, reader.bytes[reader.index] == UInt8(ascii: ":") else {
                    throw reader.error("expected ':' after member name")
                }
                reader.index += 1
                reader.skipWhitespace()
                try member(name, keyOffset, &reader)
            }
            if let plainEnd {
                try value(&self, UnsafeBufferPointer(rebasing: bytes[nameStart..<plainEnd]))
            } else {
                try escaped.withUnsafeBufferPointer { (name) throws(CoreError) in try value(&self, name) }
            }
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

    /// Reads the array at `index` (its own nesting `depth`) element by element, as ``readMembers(depth:_:)`` does.
    mutating func readElements(depth: Int, _ element: (Int, inout JSONReader) throws(CoreError) -> Void)
        throws(CoreError)
    {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "[") else { throw error("expected an array") }
        try enter(depth)
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

    /// The error for a member name seen twice in one object.
    func duplicate(_ key: String, at offset: Int) -> CoreError {
        CoreError(code: .malformedJSON, message: "duplicate member name \"\(key)\" at byte \(offset)", offset: offset)
    }
}
