internal import CLibPQ
import Synchronization

/// One libpq connection (`PGconn`), used by one thread at a time.
///
/// Ownership: this object owns the `PGconn` and frees it with `PQfinish` in `close()` or, at the latest, in
/// `deinit`. It is deliberately not Sendable: libpq calls block, so a connection lives on a dedicated thread
/// (`PostgresPool`, `PostgresWorker`) and never on an event loop or Swift's cooperative pool.
///
/// Every statement is sent with `PQexecParams`: values travel as parameters and are never part of the SQL
/// text. The only SQL text built from input is identifiers, always through `PostgresIdentifier`.
public final class PostgresConnection {
    /// The libpq connection; nil once closed.
    var handle: OpaquePointer?
    /// Set to 1 by the C notice receiver when the server sent FATAL/PANIC while idle. Allocated here, freed in
    /// `deinit` after `PQfinish`, so it outlives the `PGconn` that writes to it.
    let fatalNoticeSeen: UnsafeMutablePointer<Int32>
    /// Statements prepared on this session (`query(_:_:name:prepared:)`), by text and parameter types, and the
    /// name each got. Server-side prepared statements live as long as the session, so the cache does too.
    private var preparedNames: [PreparedKey: String] = [:]
    /// Names given so far: advanced before each prepare, so a name the server already holds (a failed prepare
    /// that reached it) is never asked for again.
    private var preparedCount = 0

    /// What identifies a prepared statement: its text and the parameters' type OIDs (a NULL is sent untyped, so
    /// one text can need two statements).
    private struct PreparedKey: Hashable {
        var sql: String
        var types: [UInt32]
    }

    /// A statement sent with every `BEGIN` of ``transaction(isolation:name:settings:deferBegin:_:)`` on this
    /// session, in the same round trip: session state a transaction must reset (a replication origin session's commit
    /// timestamp). One statement: a deferred `BEGIN` sends it in a pipeline.
    public var transactionPrologue: String?
    /// The statements of a `BEGIN` not sent yet (``transaction(isolation:name:settings:deferBegin:_:)``): the next
    /// statement takes them along in its round trip (`query`, `pipeline`, `executeScript`), any other use of the
    /// connection sends them first.
    var deferredBegin: [String]?
    /// Set when the body of ``transaction(isolation:name:settings:deferBegin:_:)`` committed its transaction itself
    /// (``commit(pipelining:)``): the transaction then sends no `COMMIT` of its own.
    var committedByBody = false

    /// How many statements one session prepares at most; past it, statements run unprepared (`PQexecParams`).
    public static let maxPreparedStatements = 256

    /// This session's number, unique in the process (a reopened connection gets a new one): whoever relies on an
    /// asynchronous commit being flushed by a later synchronous one on the same session can tell whether the session
    /// ended in between (a server crash loses the asynchronous commits it had not flushed).
    public let session: UInt64
    private static let sessionsOpened = Atomic<UInt64>(0)

    private init(handle: OpaquePointer) {
        self.handle = handle
        session = Self.sessionsOpened.wrappingAdd(1, ordering: .relaxed).newValue
        fatalNoticeSeen = .allocate(capacity: 1)
        fatalNoticeSeen.initialize(to: 0)
        starling_pq_watch_notices(handle, fatalNoticeSeen)
    }

    deinit {
        if let handle { PQfinish(handle) }
        fatalNoticeSeen.deallocate()
    }

    /// Opens a connection from a `postgresql://` URL (or a `key=value` connection string).
    ///
    /// The client encoding is forced to UTF-8 and libpq's notices (which it would print to stderr) are dropped
    /// (a FATAL one is remembered: see `checkIdleConnection`).
    /// - Parameter applicationName: shown in `pg_stat_activity.application_name` when given.
    public static func connect(url: String, applicationName: String? = nil) throws(PostgresError) -> PostgresConnection
    {
        try connect(url: url, applicationName: applicationName, extraParameters: [])
    }

    /// Opens a connection with more libpq keywords after the URL (they override the URL's own, e.g.
    /// `replication=database` for `PostgresReplicationConnection`).
    static func connect(
        url: String, applicationName: String?, extraParameters: [(keyword: String, value: String)]
    ) throws(PostgresError) -> PostgresConnection {
        var keywords = ["dbname", "client_encoding"]
        var values = [url, "UTF8"]
        if let applicationName {
            keywords.append("application_name")
            values.append(applicationName)
        }
        for parameter in extraParameters {
            guard !parameter.keyword.utf8.contains(0), !parameter.value.utf8.contains(0) else {
                throw PostgresError(code: .invalidParameter, message: "connection parameter contains a NUL byte")
            }
            keywords.append(parameter.keyword)
            values.append(parameter.value)
        }
        let handle = withCStringArray(keywords) { keywordPointers in
            withCStringArray(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let handle else {
            throw PostgresError(code: .connectionFailed, message: "libpq could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = trimmedMessage(PQerrorMessage(handle))
            PQfinish(handle)
            throw PostgresError(code: .connectionFailed, message: message, isConnectionLost: true)
        }
        return PostgresConnection(handle: handle)
    }

    /// Closes the connection now (`PQfinish`); later calls fail with `connectionFailed`. Idempotent.
    public func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    /// True when the connection is closed, libpq reports it broken (`PQstatus` is bad), or the server announced
    /// it is terminating this session: reconnect.
    public var isConnectionLost: Bool {
        guard let handle else { return true }
        return PQstatus(handle) != CONNECTION_OK || fatalNoticeSeen.pointee != 0
    }

    /// True inside a transaction block (open or failed), as libpq last saw it.
    public var isInTransaction: Bool {
        guard let handle else { return false }
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// True when the connection is idle outside any transaction (nothing in progress, no COPY, no pipeline).
    public var isIdle: Bool {
        guard let handle else { return false }
        return PQtransactionStatus(handle) == PQTRANS_IDLE && PQpipelineStatus(handle) == PQ_PIPELINE_OFF
    }

    /// True when the open transaction has failed and can only be rolled back.
    public var isTransactionFailed: Bool {
        guard let handle else { return false }
        return PQtransactionStatus(handle) == PQTRANS_INERROR
    }

    /// The server process ID serving this connection (`PQbackendPID`).
    public var backendPID: Int32 {
        guard let handle else { return 0 }
        return PQbackendPID(handle)
    }

    /// Runs one parameterized statement and returns its rows.
    ///
    /// - Parameters:
    ///   - sql: the statement, with `$1`, `$2`… placeholders; constant text or quoted identifiers only.
    ///   - params: the values, sent in text format (NULL as a real NULL), never spliced into `sql`.
    ///   - name: a short name for errors and logs (the SQL text and values are never logged).
    ///   - prepared: prepare the statement once per session and execute it by name from then on, so the server
    ///     parses and analyses it once and can keep its plan: for statements run again and again (an apply's,
    ///     a push's), where parsing and planning cost more than running. Not for text built per call.
    @discardableResult
    public func query(_ sql: String, _ params: [PostgresValue] = [], name: String? = nil, prepared: Bool = false)
        throws(PostgresError) -> PostgresResult
    {
        if deferredBegin != nil {
            let results = try pipeline([PostgresStatement(sql, params, name: name, prepared: prepared)])
            return results.last ?? PostgresResult(commandTag: "", affectedRows: 0)
        }
        let handle = try liveHandle(name: name)
        let encoded = try EncodedParameters(params)
        if prepared, let statement = try preparedStatement(sql, types: encoded.types, handle: handle, name: name) {
            let result = encoded.withPointers { _, values, lengths, formats in
                PQexecPrepared(handle, statement, Int32(params.count), values, lengths, formats, 0)
            }
            do {
                return try consume(result, name: name)
            } catch {
                throw dropSessionIfPreparedLost(error)
            }
        }
        let result = encoded.withPointers { types, values, lengths, formats in
            PQexecParams(handle, sql, Int32(params.count), types, values, lengths, formats, 0)
        }
        return try consume(result, name: name)
    }

    /// ``query(_:_:name:prepared:)`` with a statement built elsewhere.
    @discardableResult
    public func query(_ statement: PostgresStatement) throws(PostgresError) -> PostgresResult {
        try query(statement.sql, statement.params, name: statement.name, prepared: statement.prepared)
    }

    /// Runs one parameterized statement that returns no rows and gives the affected row count.
    @discardableResult
    public func execute(_ sql: String, _ params: [PostgresValue] = [], name: String? = nil, prepared: Bool = false)
        throws(PostgresError) -> Int
    {
        try query(sql, params, name: name, prepared: prepared).affectedRows
    }

    /// The name `sql` is prepared under on this session with these parameter types, preparing it on first use
    /// (`PQprepare`); nil once the session holds ``maxPreparedStatements``. A failed prepare (a syntax error, an
    /// aborted transaction) throws and caches nothing. A prepared statement is not transactional: a rollback
    /// leaves it in place.
    func preparedStatement(
        _ sql: String, types: [UInt32], handle: OpaquePointer, name: String?
    ) throws(PostgresError) -> String? {
        let key = PreparedKey(sql: sql, types: types)
        if let statement = preparedNames[key] { return statement }
        guard preparedNames.count < Self.maxPreparedStatements else { return nil }
        preparedCount += 1
        let statement = "starling_\(preparedCount)"
        let result = types.withUnsafeBufferPointer { types in
            PQprepare(handle, statement, sql, Int32(types.count), types.baseAddress)
        }
        do {
            _ = try consume(result, name: name)
        } catch {
            throw dropSessionIfPreparedLost(error)
        }
        preparedNames[key] = statement
        return statement
    }

    /// A session whose prepared statements are not what this object believes (a `DISCARD ALL` or `DEALLOCATE`
    /// ran on it: 26000; a pooler handed over a backend holding our names: 42P05) would fail every later
    /// statement: it is closed, so its owner connects again with an empty cache. Returns `error` (now marked as
    /// a lost connection when the session was dropped).
    func dropSessionIfPreparedLost(_ error: PostgresError) -> PostgresError {
        guard error.sqlState == "26000" || error.sqlState == "42P05" else { return error }
        preparedNames.removeAll()
        close()
        var lost = error
        lost.isConnectionLost = true
        return lost
    }

    /// Runs SQL text with the simple query protocol, which allows several `;`-separated statements but no
    /// parameters: only for trusted constant text (migrations, `BEGIN`, `LISTEN "quoted"`). Returns the last
    /// statement's result.
    @discardableResult
    public func executeScript(_ sql: String, name: String? = nil) throws(PostgresError) -> PostgresResult {
        let begin = takeDeferredBegin()
        let handle = try liveHandle(name: name)
        return try consume(PQexec(handle, (begin + [sql]).joined(separator: "; ")), name: name)
    }

    /// The deferred `BEGIN`'s statements (empty when none), now the caller's to send.
    func takeDeferredBegin() -> [String] {
        defer { deferredBegin = nil }
        return deferredBegin ?? []
    }

    /// The open handle, or `connectionFailed` when closed.
    func liveHandle(name: String?) throws(PostgresError) -> OpaquePointer {
        guard let handle else {
            throw PostgresError(
                code: .connectionFailed, message: "connection is closed", queryName: name,
                isConnectionLost: true)
        }
        // A use that cannot take a deferred BEGIN along (COPY, LISTEN…) sends it first.
        let begin = takeDeferredBegin()
        if !begin.isEmpty { _ = try consume(PQexec(handle, begin.joined(separator: "; ")), name: name) }
        return handle
    }

    /// Turns a `PGresult` into a `PostgresResult` or an error, clearing it on every path.
    func consume(_ result: OpaquePointer?, name: String?) throws(PostgresError) -> PostgresResult {
        guard let result else { throw connectionError(name: name) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
            return PostgresResult(copying: result)
        case PGRES_EMPTY_QUERY:
            return PostgresResult(commandTag: "", affectedRows: 0)
        case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR:
            throw serverError(result, name: name)
        default:
            let status = String(cString: PQresStatus(PQresultStatus(result)))
            throw PostgresError(
                code: .protocolError, message: "unexpected result status \(status)", queryName: name,
                isConnectionLost: isConnectionLost)
        }
    }

    /// The error libpq reports for the connection (no result object to read it from).
    func connectionError(name: String?, code: PostgresError.Code = .queryFailed) -> PostgresError {
        let message = handle.map { Self.trimmedMessage(PQerrorMessage($0)) } ?? "connection is closed"
        return PostgresError(code: code, message: message, queryName: name, isConnectionLost: isConnectionLost)
    }

    /// The server's error from a failed result: SQLSTATE, primary message, detail, hint, constraint.
    func serverError(_ result: OpaquePointer, name: String?) -> PostgresError {
        func field(_ code: Int32) -> String? { PQresultErrorField(result, code).map { String(cString: $0) } }
        let primary = field(starling_pq_diag_message_primary())
        let message = primary ?? Self.trimmedMessage(PQresultErrorMessage(result))
        return PostgresError(
            code: .queryFailed, message: message.isEmpty ? "query failed" : message,
            sqlState: field(starling_pq_diag_sqlstate()), detail: field(starling_pq_diag_message_detail()),
            hint: field(starling_pq_diag_message_hint()), constraintName: field(starling_pq_diag_constraint_name()),
            queryName: name, isConnectionLost: isConnectionLost)
    }

    static func trimmedMessage(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        var message = String(cString: pointer)
        while message.last?.isWhitespace == true { message.removeLast() }
        return message
    }
}

/// Calls `body` with a NULL-terminated array of C strings; the pointers are valid only inside `body`.
func withCStringArray<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    var block = CStringBlock()
    for string in strings { block.append(Array(string.utf8)) }
    return block.withPointers { pointers in body(pointers + [nil]) }
}
