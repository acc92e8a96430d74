internal import CLibPQ

/// Writes rows into a running `COPY … FROM STDIN` in PostgreSQL's text format.
///
/// Handed out by `PostgresConnection.copyIn` and valid only inside its closure, on that connection's thread.
/// Fields are the parameters' text form with COPY's escapes applied (`\\`, `\t`, `\n`, `\r`; NULL is `\N`),
/// so tabs, newlines and backslashes inside values stay data. Rows are buffered and sent in chunks of
/// `flushBytes` with `PQputCopyData`.
public final class PostgresCopyWriter {
    /// How many buffered bytes trigger a `PQputCopyData`.
    static let flushBytes = 256 * 1024

    private let handle: OpaquePointer
    private let columnCount: Int
    private var buffer: [UInt8] = []
    private var scratch: [UInt8] = []
    /// Rows appended so far.
    public private(set) var rowCount = 0

    init(handle: OpaquePointer, columnCount: Int) {
        self.handle = handle
        self.columnCount = columnCount
        buffer.reserveCapacity(Self.flushBytes + 4096)
    }

    /// Appends one row; `values` must have one value per column given to `copyIn`.
    public func appendRow(_ values: [PostgresValue]) throws(PostgresError) {
        guard values.count == columnCount else {
            throw PostgresError(
                code: .invalidParameter,
                message: "COPY row has \(values.count) values for \(columnCount) columns")
        }
        for (index, value) in values.enumerated() {
            if index > 0 { buffer.append(UInt8(ascii: "\t")) }
            // The common field types are written straight into the buffer (the sequencer's hot path: measured
            // at half of a group commit's store time when every field went through `scratch`).
            switch value {
            case .null:
                buffer.append(UInt8(ascii: "\\"))
                buffer.append(UInt8(ascii: "N"))
            case .text(let text):
                try Self.appendEscaped(text: text, to: &buffer)
            case .int64(let number):
                Self.appendDecimal(number, to: &buffer)
            case .int32(let number):
                Self.appendDecimal(Int64(number), to: &buffer)
            case .bool(let flag):
                buffer.append(flag ? UInt8(ascii: "t") : UInt8(ascii: "f"))
            default:
                scratch.removeAll(keepingCapacity: true)
                try value.encodeText(into: &scratch)
                Self.appendEscaped(scratch, to: &buffer)
            }
        }
        buffer.append(UInt8(ascii: "\n"))
        rowCount += 1
        if buffer.count >= Self.flushBytes { try flush() }
    }

    /// Sends the buffered rows.
    func flush() throws(PostgresError) {
        guard !buffer.isEmpty else { return }
        let rc = buffer.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
        }
        guard rc == 1 else {
            throw PostgresError(
                code: .queryFailed,
                message: PostgresConnection.trimmedMessage(PQerrorMessage(handle)),
                queryName: "copy", isConnectionLost: PQstatus(handle) != CONNECTION_OK)
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Appends `text` with COPY's escapes; a text without bytes to escape is copied in one piece.
    /// Throws `invalidParameter` for a NUL byte, as ``PostgresValue/encodeText(into:)`` does.
    static func appendEscaped(text: String, to buffer: inout [UInt8]) throws(PostgresError) {
        var text = text
        let hasNUL = text.withUTF8 { bytes in
            var clean = true
            for byte in bytes where byte <= UInt8(ascii: "\r") || byte == UInt8(ascii: "\\") {
                if byte == 0 { return true }
                if byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
                    || byte == UInt8(ascii: "\\")
                {
                    clean = false
                }
            }
            if clean { buffer.append(contentsOf: bytes) } else { appendEscaped(bytes, to: &buffer) }
            return false
        }
        if hasNUL { throw PostgresError(code: .invalidParameter, message: "text parameter contains a NUL byte") }
    }

    /// Appends the decimal digits of `number` (no allocation, unlike `String(number)`).
    static func appendDecimal(_ number: Int64, to buffer: inout [UInt8]) {
        if number < 0 { buffer.append(UInt8(ascii: "-")) }
        var magnitude = number.magnitude
        let start = buffer.count
        repeat {
            buffer.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        buffer[start...].reverse()
    }

    /// COPY text format escapes: backslash, tab, newline and carriage return become `\\`, `\t`, `\n`, `\r`.
    static func appendEscaped(_ bytes: some Sequence<UInt8>, to buffer: inout [UInt8]) {
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\\"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "\t"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "t"))
            case UInt8(ascii: "\n"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "n"))
            case UInt8(ascii: "\r"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "r"))
            default: buffer.append(byte)
            }
        }
    }
}

extension PostgresConnection {
    /// Bulk-loads rows with `COPY table (columns) FROM STDIN` and returns the number of rows copied.
    ///
    /// `table` and `columns` are quoted with `PostgresIdentifier`. `body` appends rows through the writer; if it
    /// throws, the COPY is aborted (nothing is inserted) and the error is rethrown. Like any statement outside a
    /// transaction, the COPY is atomic on its own.
    @discardableResult
    public func copyIn(
        table: String, columns: [String], name: String? = nil, _ body: (PostgresCopyWriter) throws -> Void
    ) throws -> Int {
        let queryName = name ?? "copy"
        let quotedColumns = try columns.map { (column) throws(PostgresError) in try PostgresIdentifier.quoteName(column)
        }
        let sql = "COPY \(try PostgresIdentifier.quote(table)) (\(quotedColumns.joined(separator: ", "))) FROM STDIN"
        let handle = try liveHandle(name: queryName)
        try startCopy(handle, sql: sql, name: queryName)
        let writer = PostgresCopyWriter(handle: handle, columnCount: columns.count)
        do {
            try body(writer)
            try writer.flush()
        } catch {
            _ = PQputCopyEnd(handle, "aborted by the client")
            _ = try? finishCopy(handle, name: queryName)
            throw error
        }
        guard PQputCopyEnd(handle, nil) == 1 else { throw connectionError(name: queryName) }
        return try finishCopy(handle, name: queryName)
    }

    /// Convenience: copies every row of `rows`.
    @discardableResult
    public func copyIn(
        table: String, columns: [String], rows: some Sequence<[PostgresValue]>, name: String? = nil
    ) throws -> Int {
        try copyIn(table: table, columns: columns, name: name) { writer in
            for row in rows { try writer.appendRow(row) }
        }
    }

    private func startCopy(_ handle: OpaquePointer, sql: String, name: String) throws(PostgresError) {
        guard let result = PQexec(handle, sql) else { throw connectionError(name: name) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COPY_IN:
            return
        case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR:
            throw serverError(result, name: name)
        default:
            throw PostgresError(
                code: .protocolError, message: "COPY did not start", queryName: name,
                isConnectionLost: isConnectionLost)
        }
    }

    /// Reads the COPY's final result (and drains until NULL); returns the copied row count.
    private func finishCopy(_ handle: OpaquePointer, name: String) throws(PostgresError) -> Int {
        var outcome: Result<Int, PostgresError>?
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            guard outcome == nil else { continue }
            switch PQresultStatus(result) {
            case PGRES_COMMAND_OK:
                outcome = .success(PQcmdTuples(result).flatMap { Int(String(cString: $0)) } ?? 0)
            case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR:
                outcome = .failure(serverError(result, name: name))
            default:
                outcome = .failure(
                    PostgresError(
                        code: .protocolError, message: "unexpected COPY result",
                        queryName: name, isConnectionLost: isConnectionLost))
            }
        }
        guard let outcome else { throw connectionError(name: name) }
        return try outcome.get()
    }
}
