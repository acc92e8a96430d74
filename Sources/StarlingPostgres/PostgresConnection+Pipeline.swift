internal import CLibPQ
internal import Glibc

/// One statement of a pipeline: SQL text with placeholders, its parameters, a name for errors, and whether it
/// runs as a prepared statement of the session (``PostgresConnection/query(_:_:name:prepared:)``).
public struct PostgresStatement: Sendable {
    public var sql: String
    public var params: [PostgresValue]
    public var name: String?
    public var prepared: Bool

    public init(_ sql: String, _ params: [PostgresValue] = [], name: String? = nil, prepared: Bool = false) {
        self.sql = sql
        self.params = params
        self.name = name
        self.prepared = prepared
    }
}

extension PostgresConnection {
    /// How many statements are queued into libpq's output buffer before it is flushed and replies are read.
    static let pipelineChunk = 256

    /// Runs many statements in one round trip with libpq's pipeline mode and returns one result per statement.
    ///
    /// All statements share one pipeline sync point, so outside an explicit transaction they run in one
    /// implicit transaction: all or nothing. On the first failing statement the rest are skipped by the
    /// server and its error is thrown. The socket is non-blocking while the pipeline runs, and replies are
    /// read while statements are still being written, so a large batch cannot deadlock on full buffers.
    public func pipeline(_ statements: some Collection<PostgresStatement>) throws(PostgresError) -> [PostgresResult] {
        // Read once: the statements to prepare are matched to the ones sent by position. A deferred BEGIN goes
        // first, its results left out; its statements are the same few texts again and again: prepared, so the
        // server parses them once a session.
        let begin = takeDeferredBegin().map { PostgresStatement($0, name: "begin", prepared: true) }
        let statements = begin + Array(statements)
        let handle = try liveHandle(name: "pipeline")
        // Statements to run prepared are prepared first (libpq cannot prepare synchronously in pipeline mode).
        var preparedNames: [String?] = []
        if statements.contains(where: \.prepared) {
            for statement in statements {
                preparedNames.append(
                    statement.prepared
                        ? try preparedStatement(
                            statement.sql, types: statement.params.map(\.typeOID), handle: handle, name: statement.name)
                        : nil)
            }
        }
        guard PQenterPipelineMode(handle) == 1 else { throw connectionError(name: "pipeline") }
        guard PQsetnonblocking(handle, 1) == 0 else {
            PQexitPipelineMode(handle)
            throw connectionError(name: "pipeline")
        }
        defer { PQsetnonblocking(handle, 0) }
        do throws(PostgresError) {
            return try runPipeline(statements, preparedNames: preparedNames, handle: handle, skipping: begin.count)
        } catch {
            // Failed on this side mid-pipeline (a write, a poll, a reply it cannot read): requests may still be
            // unanswered, so the session cannot be trusted; it is closed and its owner connects again.
            guard PQpipelineStatus(handle) != PQ_PIPELINE_OFF else { throw error }
            close()
            var lost = error
            lost.isConnectionLost = true
            throw lost
        }
    }

    /// The body of ``pipeline(_:)`` once in pipeline mode: sends, reads every reply, leaves pipeline mode.
    private func runPipeline(
        _ statements: [PostgresStatement], preparedNames: [String?], handle: OpaquePointer, skipping begin: Int
    ) throws(PostgresError) -> [PostgresResult] {
        var collector = PipelineCollector(expected: statements.count)
        var iterator = statements.makeIterator()
        var index = 0
        var isSynced = false
        var isFlushPending = false
        while !collector.isDone {
            if !isSynced && !isFlushPending {
                for _ in 0..<Self.pipelineChunk {
                    guard let statement = iterator.next() else {
                        guard PQpipelineSync(handle) == 1 else { throw connectionError(name: "pipeline") }
                        isSynced = true
                        break
                    }
                    try send(statement, prepared: index < preparedNames.count ? preparedNames[index] : nil, on: handle)
                    index += 1
                }
                isFlushPending = try flush(handle)
            }
            try collector.collect(from: self, handle: handle)
            // While statements remain and the socket takes them, keep writing: the server may hold its replies
            // until the sync point, so waiting for input here could wait forever.
            if collector.isDone || (!isSynced && !isFlushPending) { continue }
            let ready = try waitForSocket(handle, readable: true, writable: isFlushPending)
            if ready.isWritable { isFlushPending = try flush(handle) }
        }
        try finishPipeline(handle)
        if let error = collector.firstError { throw dropSessionIfPreparedLost(error) }
        return Array(collector.results.dropFirst(begin))
    }

    /// Queues one statement: by its prepared name when it has one, as text otherwise.
    private func send(_ statement: PostgresStatement, prepared: String?, on handle: OpaquePointer)
        throws(PostgresError)
    {
        let encoded = try EncodedParameters(statement.params)
        let count = Int32(statement.params.count)
        let sent = encoded.withPointers { types, values, lengths, formats in
            if let prepared { return PQsendQueryPrepared(handle, prepared, count, values, lengths, formats, 0) }
            return PQsendQueryParams(handle, statement.sql, count, types, values, lengths, formats, 0)
        }
        guard sent == 1 else { throw connectionError(name: statement.name ?? "pipeline") }
    }

    /// `PQflush`: true when data is still waiting to be written.
    private func flush(_ handle: OpaquePointer) throws(PostgresError) -> Bool {
        switch PQflush(handle) {
        case 0: return false
        case 1: return true
        default: throw connectionError(name: "pipeline")
        }
    }

    /// Leaves pipeline mode once every result has been read (draining any stragglers first).
    private func finishPipeline(_ handle: OpaquePointer) throws(PostgresError) {
        for _ in 0..<4 {
            if PQexitPipelineMode(handle) == 1 { return }
            while let stray = PQgetResult(handle) { PQclear(stray) }
        }
        throw connectionError(name: "pipeline", code: .protocolError)
    }

    /// Which directions `poll` reported ready.
    struct SocketReadiness {
        var isReadable: Bool
        var isWritable: Bool
    }

    /// Blocks in `poll` on the connection's socket until it is readable and/or writable, or until `timeout`
    /// (nil: forever) passes, retrying on EINTR.
    func waitForSocket(
        _ handle: OpaquePointer, readable: Bool, writable: Bool, timeoutMilliseconds: Int32 = -1
    ) throws(PostgresError) -> SocketReadiness {
        let socket = PQsocket(handle)
        guard socket >= 0 else { throw connectionError(name: "poll") }
        var events: Int16 = 0
        if readable { events |= Int16(POLLIN) }
        if writable { events |= Int16(POLLOUT) }
        var descriptor = pollfd(fd: socket, events: events, revents: 0)
        while true {
            let rc = poll(&descriptor, 1, timeoutMilliseconds)
            if rc >= 0 { break }
            guard errno == EINTR else {
                throw PostgresError(
                    code: .queryFailed, message: "poll failed: errno \(errno)",
                    isConnectionLost: isConnectionLost)
            }
        }
        let failed = descriptor.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0
        return SocketReadiness(
            isReadable: descriptor.revents & Int16(POLLIN) != 0 || failed,
            isWritable: descriptor.revents & Int16(POLLOUT) != 0 || failed)
    }
}

/// Reads pipeline replies as they arrive: one result (then a NULL) per statement, then the sync marker.
struct PipelineCollector {
    private(set) var results: [PostgresResult] = []
    private(set) var firstError: PostgresError?
    private(set) var isDone = false
    /// True when the current statement already produced its result and its closing NULL is awaited.
    private var isStatementOpen = false

    init(expected: Int) {
        results.reserveCapacity(expected)
    }

    /// Reads whatever the socket has (without blocking) and turns every complete reply into a result.
    mutating func collect(from connection: PostgresConnection, handle: OpaquePointer) throws(PostgresError) {
        guard PQconsumeInput(handle) == 1 else { throw connectionError(connection) }
        while !isDone && PQisBusy(handle) == 0 {
            guard let result = PQgetResult(handle) else {
                // A NULL closes the current statement's replies; a NULL with nothing open means "nothing yet".
                if isStatementOpen { isStatementOpen = false; continue }
                break
            }
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_PIPELINE_SYNC:
                isDone = true
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
                results.append(PostgresResult(copying: result))
                isStatementOpen = true
            case PGRES_PIPELINE_ABORTED:
                isStatementOpen = true
            case PGRES_EMPTY_QUERY:
                results.append(PostgresResult(commandTag: "", affectedRows: 0))
                isStatementOpen = true
            case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR:
                if firstError == nil { firstError = connection.serverError(result, name: "pipeline") }
                isStatementOpen = true
            default:
                let status = String(cString: PQresStatus(PQresultStatus(result)))
                throw PostgresError(
                    code: .protocolError, message: "unexpected pipeline result status \(status)",
                    queryName: "pipeline", isConnectionLost: connection.isConnectionLost)
            }
        }
    }

    private func connectionError(_ connection: PostgresConnection) -> PostgresError {
        connection.connectionError(name: "pipeline")
    }
}
