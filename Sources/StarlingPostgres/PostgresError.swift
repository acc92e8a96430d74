/// The one error type of StarlingPostgres.
///
/// `code` says what kind of failure this is (extensible: new codes are new static constants); the rest is
/// context: the server's SQLSTATE, message, detail and hint when the server sent an error, and the name the
/// caller gave the query. `isConnectionLost` is true when the connection was unusable right after the
/// failure, so callers (the pool, the sequencer) know to reconnect instead of retrying on the same socket.
public struct PostgresError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure: compare against the static constants.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// The code's stable name, used in logs.
        public let name: String

        /// Makes a code; new codes are added as static constants below.
        public init(_ name: String) { self.name = name }

        public var description: String { name }

        /// Could not open a connection (bad URL, refused, authentication failed).
        public static let connectionFailed = Code("connectionFailed")
        /// The server answered a statement with an error (see `sqlState`), or the connection broke during it.
        public static let queryFailed = Code("queryFailed")
        /// libpq or the server did something this wrapper did not expect (wrong result status, bad framing).
        public static let protocolError = Code("protocolError")
        /// A typed accessor was used on a column of another type, or the text could not be decoded.
        public static let typeMismatch = Code("typeMismatch")
        /// A non-optional accessor found SQL NULL.
        public static let unexpectedNull = Code("unexpectedNull")
        /// A column index or name that the result does not have.
        public static let columnNotFound = Code("columnNotFound")
        /// A parameter that cannot be sent (e.g. a text value containing a NUL byte).
        public static let invalidParameter = Code("invalidParameter")
        /// An identifier that cannot be quoted (empty, or containing a NUL byte).
        public static let invalidIdentifier = Code("invalidIdentifier")
        /// A migration file or statement failed; `sqlState` is set when the server refused it.
        public static let migrationFailed = Code("migrationFailed")
        /// The database's schema is newer than the newest migration this binary knows.
        public static let schemaTooNew = Code("schemaTooNew")
        /// The pool's or worker's bounded job queue is full: shed load (HTTP 503) instead of queueing more.
        public static let poolOverloaded = Code("poolOverloaded")
        /// The pool or worker has been shut down.
        public static let poolClosed = Code("poolClosed")
        /// A replication or pgoutput message that does not parse (truncated, unknown tag, bad length, trailing
        /// bytes): the stream cannot be trusted past it.
        public static let malformedMessage = Code("malformedMessage")
        /// The server ended the replication stream (CopyDone) without an error; the connection is back in
        /// command mode.
        public static let streamEnded = Code("streamEnded")
        /// A replication call in the wrong mode (a command while streaming, streaming calls while not streaming).
        public static let wrongReplicationState = Code("wrongReplicationState")
    }

    /// Well-known SQLSTATE values callers branch on.
    public enum SQLState {
        public static let uniqueViolation = "23505"
        public static let foreignKeyViolation = "23503"
        public static let serializationFailure = "40001"
        public static let deadlockDetected = "40P01"
        public static let adminShutdown = "57P01"
        public static let undefinedTable = "42P01"
        public static let queryCanceled = "57014"
    }

    /// What kind of failure.
    public var code: Code
    /// Human-readable description (libpq's or the server's primary message, or ours).
    public var message: String
    /// The server's SQLSTATE (`PG_DIAG_SQLSTATE`), when the server reported the error.
    public var sqlState: String?
    /// The server's DETAIL line, if any.
    public var detail: String?
    /// The server's HINT line, if any.
    public var hint: String?
    /// The constraint the server named (e.g. for 23505), if any.
    public var constraintName: String?
    /// The caller's name for the statement (never the SQL text or its parameters).
    public var queryName: String?
    /// True when the connection was broken right after this failure: reconnect rather than retry on it.
    public var isConnectionLost: Bool

    /// Makes an error; only `code` and `message` are required.
    public init(
        code: Code, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil,
        constraintName: String? = nil, queryName: String? = nil, isConnectionLost: Bool = false
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.constraintName = constraintName
        self.queryName = queryName
        self.isConnectionLost = isConnectionLost
    }

    /// True when the server refused the statement with a unique violation (23505).
    public var isUniqueViolation: Bool { sqlState == SQLState.uniqueViolation }

    public var description: String {
        var text = "PostgresError(\(code)"
        if let queryName { text += ", query: \(queryName)" }
        if let sqlState { text += ", sqlstate: \(sqlState)" }
        text += "): \(message)"
        if let detail { text += " DETAIL: \(detail)" }
        if let hint { text += " HINT: \(hint)" }
        if isConnectionLost { text += " [connection lost]" }
        return text
    }
}
