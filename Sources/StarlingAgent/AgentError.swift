import StarlingPostgres

/// The one error type of StarlingAgent.
///
/// `code` is extensible (static constants on ``Code``); `message` is a sentence for operators; `key` names
/// the configuration key (`tuning.batch.max_count`) or table (`public.items`) concerned; `httpStatus` and
/// `sqlState` carry the hub's status or the server's SQLSTATE. ``isRetryable`` tells the loop whether
/// backing off and trying again can help (hub down, connection lost) or an operator must act.
public struct AgentError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure; new codes may be added.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        public var description: String { name }

        /// agent.yaml is malformed or a value is out of range (`key` names it).
        public static let invalidConfiguration = Code("invalid_configuration")
        /// A synced table is missing locally, has no primary key, or cannot be captured.
        public static let invalidTable = Code("invalid_table")
        /// The hub refused this region's table shape (different columns than the first registration).
        public static let schemaMismatch = Code("schema_mismatch")
        /// The hub could not be reached or answered 5xx: retry with backoff.
        public static let hubUnavailable = Code("hub_unavailable")
        /// The hub refused a request with a 4xx status (bad token, invalid change).
        public static let hubRejected = Code("hub_rejected")
        /// `410 cursor_pruned`: the hub dropped entries after this region's cursor; it must re-bootstrap.
        public static let cursorPruned = Code("cursor_pruned")
        /// This region's existing rows of a table differ from the hub's and `bootstrap.replace_local` is off.
        public static let adoptionRefused = Code("adoption_refused")
        /// The hub's answer did not have the expected shape.
        public static let invalidResponse = Code("invalid_response")
        /// A statement on the region's database failed.
        public static let database = Code("database")
        /// WAL capture cannot run or read the stream (a missing setting, grant or slot; a value it cannot read).
        public static let capture = Code("capture")
        /// `409 chunks_missing`: the hub lacks staged chunks of a chunked transaction (deleted when an earlier
        /// last chunk completed it, and that answer was lost): the agent re-sends the transaction from its start.
        public static let chunksMissing = Code("chunks_missing")
        /// `409 log_diverged`: the hub's log no longer holds what this region knows of it (its store was restored
        /// to an earlier point): the agent rewinds and re-asserts what the hub lost (Agent+Rewind.swift).
        public static let logDiverged = Code("log_diverged")
    }

    public var code: Code
    public var message: String
    /// The configuration key or table the error is about.
    public var key: String?
    /// The hub's HTTP status, when it answered.
    public var httpStatus: Int?
    /// The server's SQLSTATE, for database errors.
    public var sqlState: String?
    /// True when trying again later can succeed.
    public var isRetryable: Bool

    public init(
        code: Code, message: String, key: String? = nil, httpStatus: Int? = nil, sqlState: String? = nil,
        isRetryable: Bool = false
    ) {
        self.code = code
        self.message = message
        self.key = key
        self.httpStatus = httpStatus
        self.sqlState = sqlState
        self.isRetryable = isRetryable
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let key { text += " (\(key))" }
        if let httpStatus { text += " [HTTP \(httpStatus)]" }
        if let sqlState { text += " [SQLSTATE \(sqlState)]" }
        return text
    }
}

extension AgentError {
    /// Wraps any error thrown by database work: Postgres errors keep their SQLSTATE; a lost connection,
    /// deadlock or serialization failure is retryable.
    static func database(_ error: any Error, during what: String) -> AgentError {
        if let error = error as? AgentError { return error }
        guard let postgres = error as? PostgresError else {
            return AgentError(code: .database, message: "\(what): \(error)", isRetryable: true)
        }
        return AgentError(
            code: .database, message: "\(what): \(postgres)", sqlState: postgres.sqlState, isRetryable: true)
    }
}
