/// PostgreSQL array literals, one per column, of rows given as JSON images: what an upsert reads with
/// `unnest($1::int8[], $2::text[], …)` instead of a jsonb document (the agent's one-trip apply,
/// `TableSQL.upsertArraysSQL()`). The server then parses each value once, with the column type's input function,
/// where a jsonb document was parsed into a tree first and each value then taken out of it: 3.4 against 1.2 µs a
/// row of the benchmark's table (1,000-row batches, PostgreSQL 15, 2026-12-07).
///
/// Each element is the value's text as `jsonb_populate_record` gives it to the same input function: a string's
/// content, a number's text, `true`/`false`; an absent member or `null` is NULL. Only scalars: an object or array
/// value, a string holding U+0000 (no PostgreSQL text can) or an image that is not a JSON object makes ``append``
/// return false, and the caller writes the rows another way. Members that name no column are skipped.
public struct ColumnArrayWriter: Sendable {
    private let positions: [String: Int]
    /// The columns' names as UTF-8, one after the other, and each one's range there, by position: a member's name is
    /// compared as bytes, in place.
    private let nameBytes: [UInt8]
    private let nameRanges: [Range<Int>]
    /// By member ordinal, the position the member of that ordinal had in the row before (-1: no column): images of
    /// one table list their members in one order, so each name is compared once, not looked up.
    private var learned: [Int] = []
    private var arrays: [[UInt8]]
    /// Which columns the row being read has given an element (its members come in any order).
    private var filled: [Bool]
    /// The column whose array the element being read goes to.
    private var target = 0
    public private(set) var count = 0

    /// Rows expected: after the first, each array reserves room for this many like it.
    private let expectedRows: Int

    /// A writer for `columns`, in the order ``finish()`` returns their arrays, of about `rows` rows.
    public init(columns: [String], rows: Int = 0) {
        expectedRows = rows
        var positions: [String: Int] = [:]
        for (index, name) in columns.enumerated() { positions[name] = index }
        self.positions = positions
        var nameBytes: [UInt8] = []
        nameRanges = columns.map { name in
            let start = nameBytes.count
            nameBytes.append(contentsOf: name.utf8)
            return start..<nameBytes.count
        }
        self.nameBytes = nameBytes
        arrays = Array(repeating: [UInt8(ascii: "{")], count: columns.count)
        filled = Array(repeating: false, count: columns.count)
    }

    /// Appends the row whose JSON object text is `json`; false (and the writer unusable) when a value is not a
    /// scalar or the text is not a well-formed object.
    public mutating func append(json: [UInt8]) -> Bool {
        guard json.withUnsafeBufferPointer({ bytes in readObject(bytes) }) else { return false }
        endRow()
        return true
    }

    /// Appends the row `row`; false (and the writer unusable) when a value is not a scalar.
    public mutating func append(row: JSONObject) -> Bool {
        for (name, value) in row {
            guard let position = positions[name] else { continue }
            guard begin(position) else { return false }
            switch value {
            case .null: emit("NULL")
            case .bool(let flag): emit(flag ? "\"true\"" : "\"false\"")
            case .number(let text): quote(text.utf8)
            case .string(let text):
                guard !text.utf8.contains(0) else { return false }
                quote(text.utf8)
            case .array, .object: return false
            }
        }
        endRow()
        return true
    }

    /// The array literal of each column, in the order given at init.
    public func finish() -> [String] {
        arrays.map { array in
            var array = array
            array.append(UInt8(ascii: "}"))
            return String(decoding: array, as: UTF8.self)
        }
    }

    /// Starts the row's element of column `position`: false when the row gave it one already (a duplicate member:
    /// jsonb would keep the last).
    private mutating func begin(_ position: Int) -> Bool {
        guard !filled[position] else { return false }
        filled[position] = true
        target = position
        if count > 0 { arrays[position].append(UInt8(ascii: ",")) }
        return true
    }

    /// Ends the row: NULL for each column it gave no element.
    private mutating func endRow() {
        for position in filled.indices {
            if filled[position] {
                filled[position] = false
            } else {
                if count > 0 { arrays[position].append(UInt8(ascii: ",")) }
                arrays[position].append(contentsOf: "NULL".utf8)
            }
        }
        count += 1
        if count == 1 && expectedRows > 1 {
            for position in arrays.indices { arrays[position].reserveCapacity(arrays[position].count * (expectedRows + 1)) }
        }
    }

    private mutating func emit(_ text: StaticString) {
        arrays[target].append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    private mutating func emit(_ bytes: UnsafeBufferPointer<UInt8>) {
        arrays[target].append(contentsOf: bytes)
    }

    /// `text` as a quoted element: `"` and `\` escaped with a backslash.
    private mutating func quote(_ text: String.UTF8View) {
        arrays[target].append(UInt8(ascii: "\""))
        for byte in text {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { arrays[target].append(UInt8(ascii: "\\")) }
            arrays[target].append(byte)
        }
        arrays[target].append(UInt8(ascii: "\""))
    }

    // MARK: Reading the object

    private mutating func readObject(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var reader = JSONReader(bytes: bytes, maxDepth: 64)
        reader.skipWhitespace()
        guard reader.index < bytes.count, bytes[reader.index] == UInt8(ascii: "{") else { return false }
        reader.index += 1
        reader.skipWhitespace()
        if reader.index < bytes.count, bytes[reader.index] == UInt8(ascii: "}") { return true }
        var ordinal = 0
        while true {
            guard reader.index < bytes.count, bytes[reader.index] == UInt8(ascii: "\"") else { return false }
            guard let position = memberPosition(&reader, ordinal: ordinal) else { return false }
            ordinal += 1
            reader.skipWhitespace()
            guard reader.index < bytes.count, bytes[reader.index] == UInt8(ascii: ":") else { return false }
            reader.index += 1
            reader.skipWhitespace()
            if position >= 0 {
                guard begin(position), readScalar(&reader) else { return false }
            } else {
                guard (try? reader.skipValue(depth: 1)) != nil else { return false }
            }
            reader.skipWhitespace()
            guard reader.index < bytes.count else { return false }
            switch bytes[reader.index] {
            case UInt8(ascii: ","):
                reader.index += 1
                reader.skipWhitespace()
            case UInt8(ascii: "}"):
                reader.index += 1
                reader.skipWhitespace()
                return reader.index == bytes.count
            default: return false
            }
        }
    }

    /// Reads the member name at the reader (its opening quote): the column position it names, -1 for none, nil when
    /// it is not a well-formed string. A name without escapes is compared in place with the name the member of this
    /// ordinal had before, then with every column's.
    private mutating func memberPosition(_ reader: inout JSONReader, ordinal: Int) -> Int? {
        let bytes = reader.bytes
        let start = reader.index + 1
        var end = start
        while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\") { end += 1 }
        guard end < bytes.count else { return nil }
        if bytes[end] == UInt8(ascii: "\\") {
            reader.index = start
            guard let name = try? reader.readStringBody() else { return nil }
            return positions[name] ?? -1
        }
        reader.index = end + 1
        let name = UnsafeBufferPointer(rebasing: bytes[start..<end])
        return nameBytes.withUnsafeBufferPointer { names in
            func isNamed(_ position: Int) -> Bool {
                let range = nameRanges[position]
                guard range.count == name.count else { return false }
                for offset in 0..<name.count where names[range.lowerBound + offset] != name[offset] { return false }
                return true
            }
            func find() -> Int { nameRanges.indices.first(where: isNamed) ?? -1 }
            if ordinal < learned.count {
                let guess = learned[ordinal]
                if guess >= 0 ? isNamed(guess) : find() < 0 { return guess }
            }
            let position = find()
            if ordinal < learned.count {
                learned[ordinal] = position
            } else if ordinal == learned.count {
                learned.append(position)
            }
            return position
        }
    }

    /// Reads one scalar value as the target column's element (`null` as NULL); false when it is not a scalar or not
    /// well formed.
    private mutating func readScalar(_ reader: inout JSONReader) -> Bool {
        let bytes = reader.bytes
        let first = bytes[reader.index]
        switch first {
        case UInt8(ascii: "\""):
            return readString(&reader)
        case UInt8(ascii: "n"), UInt8(ascii: "t"), UInt8(ascii: "f"):
            let (literal, element): (StaticString, StaticString) =
                first == UInt8(ascii: "n")
                ? ("null", "NULL") : first == UInt8(ascii: "t") ? ("true", "\"true\"") : ("false", "\"false\"")
            guard (try? reader.expectLiteral(literal)) != nil else { return false }
            emit(element)
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let start = reader.index
            guard (try? reader.scanNumber()) != nil else { return false }
            emit("\"")
            emit(UnsafeBufferPointer(rebasing: bytes[start..<reader.index]))
            emit("\"")
            return true
        default:
            return false
        }
    }

    /// A string value as an element. JSON's `\\` and `\"` are the array literal's escapes too, so a string with no
    /// other escape is copied as it stands; any other escape is decoded and the text quoted again.
    private mutating func readString(_ reader: inout JSONReader) -> Bool {
        let bytes = reader.bytes
        let open = reader.index
        var index = open + 1
        while index < bytes.count {
            index = reader.plainRunEnd(from: index)
            guard index < bytes.count else { break }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                emit(UnsafeBufferPointer(rebasing: bytes[open...index]))
                reader.index = index + 1
                return true
            }
            if byte == UInt8(ascii: "\\") {
                guard index + 1 < bytes.count else { return false }
                let next = bytes[index + 1]
                if next == UInt8(ascii: "\\") || next == UInt8(ascii: "\"") {
                    index += 2
                    continue
                }
                reader.index = open + 1
                guard let text = try? reader.readStringBody(), !text.utf8.contains(0) else { return false }
                quote(text.utf8)
                return true
            }
            index += 1
        }
        return false
    }
}
