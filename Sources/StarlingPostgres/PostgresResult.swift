internal import CLibPQ

/// A result column: its name and its type OID (e.g. 20 for bigint, 25 for text).
public struct PostgresColumn: Sendable, Hashable {
    public var name: String
    public var typeOID: UInt32

    public init(name: String, typeOID: UInt32) {
        self.name = name
        self.typeOID = typeOID
    }
}

/// The rows a statement returned, copied out of libpq's `PGresult` (which is cleared right after), so it is a
/// plain Sendable value that can cross threads.
///
/// Storage is compact: every cell's text bytes sit in one contiguous buffer, with one offset per cell and a
/// null flag. Values are in PostgreSQL's text format; the typed accessors on `PostgresRow` decode them and
/// check the column's type OID first.
public struct PostgresResult: Sendable {
    /// The columns, in order.
    public let columns: [PostgresColumn]
    /// Number of rows.
    public let rowCount: Int
    /// The affected row count from the command tag (`INSERT 0 5` → 5), 0 when the tag carries none.
    public let affectedRows: Int
    /// The command tag, e.g. `INSERT 0 5` or `SELECT 3`.
    public let commandTag: String

    /// All cell bytes, row-major.
    let storage: [UInt8]
    /// `offsets[i]..<offsets[i + 1]` are cell `i`'s bytes (row-major, `rowCount * columns.count + 1` entries).
    let offsets: [Int]
    /// `nulls[i]` is true when cell `i` is SQL NULL.
    let nulls: [Bool]

    /// Copies everything out of `result`; the caller still owns (and clears) `result`.
    init(copying result: OpaquePointer) {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var columns: [PostgresColumn] = []
        columns.reserveCapacity(columnCount)
        for column in 0..<columnCount {
            let name = PQfname(result, Int32(column)).map { String(cString: $0) } ?? ""
            columns.append(PostgresColumn(name: name, typeOID: PQftype(result, Int32(column))))
        }
        var total = 0
        for row in 0..<rowCount {
            for column in 0..<columnCount { total += Int(PQgetlength(result, Int32(row), Int32(column))) }
        }
        var storage: [UInt8] = []
        storage.reserveCapacity(total)
        var offsets: [Int] = [0]
        offsets.reserveCapacity(rowCount * columnCount + 1)
        var nulls: [Bool] = []
        nulls.reserveCapacity(rowCount * columnCount)
        for row in 0..<rowCount {
            for column in 0..<columnCount {
                let isNull = PQgetisnull(result, Int32(row), Int32(column)) != 0
                let length = Int(PQgetlength(result, Int32(row), Int32(column)))
                if !isNull, length > 0, let value = PQgetvalue(result, Int32(row), Int32(column)) {
                    UnsafeRawPointer(value).withMemoryRebound(to: UInt8.self, capacity: length) {
                        storage.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
                    }
                }
                nulls.append(isNull)
                offsets.append(storage.count)
            }
        }
        self.columns = columns
        self.rowCount = rowCount
        self.storage = storage
        self.offsets = offsets
        self.nulls = nulls
        self.commandTag = PQcmdStatus(result).map { String(cString: $0) } ?? ""
        self.affectedRows = PQcmdTuples(result).flatMap { Int(String(cString: $0)) } ?? 0
    }

    /// A result with no columns and no rows (e.g. for an empty query string).
    init(commandTag: String, affectedRows: Int) {
        self.columns = []
        self.rowCount = 0
        self.storage = []
        self.offsets = [0]
        self.nulls = []
        self.commandTag = commandTag
        self.affectedRows = affectedRows
    }

    /// The index of the first column named `name`, if any.
    public func columnIndex(named name: String) -> Int? {
        columns.firstIndex { $0.name == name }
    }
}

extension PostgresResult: RandomAccessCollection {
    public var startIndex: Int { 0 }
    public var endIndex: Int { rowCount }

    /// Row `index` (0-based); a view sharing this result's storage.
    public subscript(index: Int) -> PostgresRow {
        precondition(index >= 0 && index < rowCount, "row index out of range")
        return PostgresRow(result: self, row: index)
    }
}

/// Something that names a result column: its 0-based index (`Int`) or its name (`String`).
public protocol PostgresColumnKey {
    /// The column index in `columns`, or `columnNotFound`.
    func columnIndex(in columns: [PostgresColumn]) throws(PostgresError) -> Int
}

extension Int: PostgresColumnKey {
    public func columnIndex(in columns: [PostgresColumn]) throws(PostgresError) -> Int {
        guard self >= 0 && self < columns.count else {
            throw PostgresError(code: .columnNotFound, message: "no column \(self) (result has \(columns.count))")
        }
        return self
    }
}

extension String: PostgresColumnKey {
    public func columnIndex(in columns: [PostgresColumn]) throws(PostgresError) -> Int {
        guard let index = columns.firstIndex(where: { $0.name == self }) else {
            throw PostgresError(code: .columnNotFound, message: "no column named \(self)")
        }
        return index
    }
}
