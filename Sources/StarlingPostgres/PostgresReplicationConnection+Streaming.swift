internal import CLibPQ

/// The CopyBoth stream: START_REPLICATION, reading XLogData and keepalives, status updates, CopyDone.
extension PostgresReplicationConnection {
    /// `START_REPLICATION SLOT slot LOGICAL X/Y ("name" 'value', …)`: enters streaming mode.
    ///
    /// The server streams transactions whose commit record starts at or after `from` (or the slot's
    /// `confirmed_flush_lsn` when that is later; `LSN.invalid` means "from the confirmed position"). Option
    /// names are sent as quoted identifiers and values as string literals with `'` doubled, so no option can
    /// change the command; values are the plugin's (for pgoutput see `PgOutputOptions`).
    public func startLogical(slot: String, from start: LSN, options: [(name: String, value: String)])
        throws(PostgresError)
    {
        try Self.validateSlotName(slot)
        try requireMode(.commands, name: "replication.start")
        guard !hasStreamed else {
            throw PostgresError(
                code: .wrongReplicationState,
                message: "this connection already streamed; a walsender streams once per connection: reconnect",
                queryName: "replication.start")
        }
        var sql = "START_REPLICATION SLOT \(slot) LOGICAL \(start)"
        if !options.isEmpty {
            var rendered: [String] = []
            for option in options {
                rendered.append(
                    "\(try PostgresIdentifier.quoteName(option.name)) \(try Self.quoteLiteral(option.value))")
            }
            sql += " (" + rendered.joined(separator: ", ") + ")"
        }
        let handle = try handle
        guard let result = PQexec(handle, sql) else {
            throw connection.connectionError(name: "replication.start")
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COPY_BOTH:
            mode = .streaming
            hasStreamed = true
            isFlushPending = false
        case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR:
            throw connection.serverError(result, name: "replication.start")
        default:
            let status = String(cString: PQresStatus(PQresultStatus(result)))
            throw PostgresError(
                code: .protocolError, message: "START_REPLICATION answered \(status), not COPY_BOTH",
                queryName: "replication.start", isConnectionLost: isConnectionLost)
        }
    }

    /// The next message of the stream, or nil when none arrived within `timeout` (`.zero`: do not wait, for an
    /// event loop that saw the socket readable).
    ///
    /// Reads what libpq has buffered first (`PQgetCopyData` in async mode), then waits in `poll` on the socket
    /// and feeds libpq (`PQconsumeInput`). Pending status-update bytes are flushed while waiting.
    /// - Throws: `streamEnded` when the server ended the stream normally, the server's error (with SQLSTATE)
    ///   when it failed it — both leave the connection in command mode — `malformedMessage` for a frame that
    ///   does not parse, `queryFailed` with `isConnectionLost` when the socket broke.
    public func next(timeout: Duration) throws(PostgresError) -> PostgresReplicationMessage? {
        try requireMode(.streaming, name: "replication.next")
        let handle = try handle
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            if let message = try readBufferedMessage(handle) { return message }
            let waitMilliseconds = Self.milliseconds(until: deadline, clock: clock)
            let ready = try connection.waitForSocket(
                handle, readable: true, writable: isFlushPending, timeoutMilliseconds: waitMilliseconds)
            if ready.isWritable && isFlushPending { isFlushPending = try flush(handle) }
            if ready.isReadable {
                guard PQconsumeInput(handle) == 1 else { throw connection.connectionError(name: "replication.next") }
                continue
            }
            if waitMilliseconds == 0 || clock.now >= deadline { return nil }
        }
    }

    /// The next message libpq has already read from the socket, without reading more or waiting: nil when none is
    /// buffered (``next(timeout:)`` reads and waits). A reader that naps between reads takes what arrived meanwhile
    /// with one read, instead of one `poll` and one `recv` for each message as it trickles in.
    public func bufferedMessage() throws(PostgresError) -> PostgresReplicationMessage? {
        try requireMode(.streaming, name: "replication.bufferedMessage")
        return try readBufferedMessage(try handle)
    }

    /// Sends a standby status update (`'r'`): the positions are "everything before this LSN", so pass a
    /// Commit's `endLSN` once that transaction is durable. The server keeps WAL from the slot's
    /// `confirmed_flush_lsn` (which follows `flushed`) and restarts there; `isReplyRequested` asks for a keepalive
    /// back. The clock is the client's `CLOCK_REALTIME`.
    public func sendStatus(written: LSN, flushed: LSN, applied: LSN, isReplyRequested: Bool = false)
        throws(PostgresError)
    {
        try requireMode(.streaming, name: "replication.sendStatus")
        let handle = try handle
        let update = PostgresReplicationMessage.standbyStatusUpdate(
            written: written, flushed: flushed, applied: applied, time: .now(), isReplyRequested: isReplyRequested)
        let queued = update.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
        }
        guard queued == 1 else { throw connection.connectionError(name: "replication.sendStatus") }
        isFlushPending = try flush(handle)
    }

    /// Ends the stream from our side (CopyDone), discards what the server still sends until its CopyDone, and
    /// returns to command mode; the slot is released (another connection can start it, e.g. from its confirmed
    /// LSN), and this connection can still run commands but not stream again.
    /// Messages discarded here are sent again by the next START_REPLICATION unless they were confirmed.
    /// - Throws: the server's error if it failed the stream meanwhile; `queryFailed` (connection lost) when no
    ///   CopyDone came within `timeout`.
    public func stopStreaming(timeout: Duration = .seconds(30)) throws(PostgresError) {
        try requireMode(.streaming, name: "replication.stop")
        let handle = try handle
        guard PQputCopyEnd(handle, nil) == 1 else { throw connection.connectionError(name: "replication.stop") }
        isFlushPending = try flush(handle)
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            do {
                while try readBufferedMessage(handle) != nil {}
            } catch let error where error.code == .streamEnded {
                return
            }
            let waitMilliseconds = Self.milliseconds(until: deadline, clock: clock)
            let ready = try connection.waitForSocket(
                handle, readable: true, writable: isFlushPending, timeoutMilliseconds: waitMilliseconds)
            if ready.isWritable && isFlushPending { isFlushPending = try flush(handle) }
            if ready.isReadable {
                guard PQconsumeInput(handle) == 1 else { throw connection.connectionError(name: "replication.stop") }
            } else if clock.now >= deadline {
                connection.close()
                mode = .commands
                throw PostgresError(
                    code: .queryFailed, message: "the server did not end the stream within \(timeout): closed",
                    queryName: "replication.stop", isConnectionLost: true)
            }
        }
    }

    // MARK: - Helpers

    /// One message libpq has already buffered, or nil. The CopyData buffer libpq allocates belongs to this call
    /// and is freed with `PQfreemem` on every path, after the message was copied out of it.
    private func readBufferedMessage(_ handle: OpaquePointer) throws(PostgresError) -> PostgresReplicationMessage? {
        var buffer: UnsafeMutablePointer<CChar>?
        let length = PQgetCopyData(handle, &buffer, 1)
        defer { if let buffer { PQfreemem(buffer) } }
        if length > 0 {
            guard let buffer else {
                throw PostgresError(
                    code: .protocolError, message: "PQgetCopyData returned no buffer", queryName: "replication.next")
            }
            return try PostgresReplicationMessage.decode(UnsafeRawBufferPointer(start: buffer, count: Int(length)))
        }
        switch length {
        case 0: return nil
        case -1: throw streamFinished(handle)
        default: throw connection.connectionError(name: "replication.next")
        }
    }

    /// The copy is over (the server sent CopyDone or an error): reads the final results, returns to command
    /// mode and gives the error to throw: the server's, or `streamEnded`.
    private func streamFinished(_ handle: OpaquePointer) -> PostgresError {
        mode = .commands
        var failure: PostgresError?
        var isStillCopying = false
        while !isStillCopying, let result = PQgetResult(handle) {
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR:
                if failure == nil { failure = connection.serverError(result, name: "replication.stream") }
            case PGRES_COPY_OUT, PGRES_COPY_BOTH:
                // Still copying after PQgetCopyData returned -1: PQgetResult would repeat this forever.
                isStillCopying = true
            default:
                continue
            }
        }
        if isStillCopying {
            connection.close()
            return failure
                ?? PostgresError(
                    code: .protocolError, message: "libpq still copying after the end of the stream: closed",
                    queryName: "replication.stream", isConnectionLost: true)
        }
        return failure
            ?? PostgresError(
                code: .streamEnded, message: "the server ended the replication stream", queryName: "replication.stream",
                isConnectionLost: isConnectionLost)
    }

    /// `PQflush`: true when bytes are still waiting to be written.
    private func flush(_ handle: OpaquePointer) throws(PostgresError) -> Bool {
        switch PQflush(handle) {
        case 0: return false
        case 1: return true
        default: throw connection.connectionError(name: "replication.flush")
        }
    }

    /// Milliseconds for `poll` until `deadline`: 0 once passed, rounded up, at most Int32.max.
    static func milliseconds(until deadline: ContinuousClock.Instant, clock: ContinuousClock) -> Int32 {
        let remaining = clock.now.duration(to: deadline)
        guard remaining > .zero else { return 0 }
        let (seconds, attoseconds) = remaining.components
        let milliseconds = seconds.multipliedReportingOverflow(by: 1000)
        guard !milliseconds.overflow else { return .max }
        return Int32(clamping: milliseconds.partialValue + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }

    /// A replication-command string literal: `'…'` with `'` doubled (the walsender's scanner has no backslash
    /// escapes); NUL cannot be sent.
    static func quoteLiteral(_ value: String) throws(PostgresError) -> String {
        guard !value.utf8.contains(0) else {
            throw PostgresError(code: .invalidParameter, message: "replication option value contains a NUL byte")
        }
        var quoted = "'"
        for character in value.unicodeScalars {
            if character == "'" { quoted.append("'") }
            quoted.unicodeScalars.append(character)
        }
        quoted.append("'")
        return quoted
    }
}

/// pgoutput's START_REPLICATION options for protocol version 1 (the version `PgOutputDecoder` reads).
public struct PgOutputOptions: Sendable, Hashable {
    /// The publications whose tables are streamed (at least one; names are case-sensitive as created).
    public var publications: [String]
    /// Also stream `pg_logical_emit_message` messages (`messages`, default false).
    public var includesMessages: Bool
    /// Values in binary send format (`binary`, default false: text output, the form `PgOutputValue.text` has).
    public var isBinary: Bool

    public init(publications: [String], includesMessages: Bool = false, isBinary: Bool = false) {
        self.publications = publications
        self.includesMessages = includesMessages
        self.isBinary = isBinary
    }

    /// The options for `startLogical`; each publication name is a quoted identifier inside the value.
    public func options() throws(PostgresError) -> [(name: String, value: String)] {
        guard !publications.isEmpty else {
            throw PostgresError(code: .invalidParameter, message: "pgoutput needs at least one publication")
        }
        var names: [String] = []
        for publication in publications { names.append(try PostgresIdentifier.quoteName(publication)) }
        var options = [
            (name: "proto_version", value: "1"), (name: "publication_names", value: names.joined(separator: ",")),
        ]
        if includesMessages { options.append((name: "messages", value: "true")) }
        if isBinary { options.append((name: "binary", value: "true")) }
        return options
    }
}
