internal import CLibPQ

/// A libpq connection in logical replication mode (`replication=database`): replication commands, then one
/// CopyBoth stream of WAL messages.
///
/// ```
///          connect                 startLogical (START_REPLICATION … LOGICAL)
///   ─────▶ commands ─────────────────────────────────────────────▶ streaming
///          identifySystem                                          next(timeout:) → 'w' XLogData | 'k' keepalive
///          createLogicalSlot / dropSlot                            sendStatus(…)  → 'r' standby status update
///              ▲                                                        │
///              └── stopStreaming() (CopyDone both ways) ────────────────┤
///              └── the server ended the stream: streamEnded / its error ┘
/// ```
/// One stream per connection: a PostgreSQL 15 walsender does not reset its CopyDone state for a second
/// START_REPLICATION … LOGICAL (the stream would end at once), so `startLogical` refuses to run twice; restart
/// by reconnecting. Commands still work after the stream ended. `stopStreaming()` releases the slot before it
/// returns, so a new connection can use it at once.
///
/// Temporary slots: the server drops the temporary slots a session created when that session ends *and* when
/// any command on it fails with an ERROR (walsender error cleanup), so a temporary slot is only as durable as
/// the error-free run of its connection.
///
/// Ownership: this object owns one `PostgresConnection`, which owns the `PGconn` and frees it (`PQfinish`) in
/// `close()` or `deinit`. Every CopyData buffer libpq hands out (`PQgetCopyData`) is owned by the call that
/// received it and freed with `PQfreemem` before that call returns; messages are copied out first.
///
/// Threading: not Sendable, like `PostgresConnection`. Commands block in libpq; `next(timeout:)` blocks in
/// `poll` up to its timeout. Use it from one dedicated thread (never an event loop or the cooperative pool),
/// or from a loop that watches `socketDescriptor` and calls `next(timeout: .zero)` when it is readable.
///
/// The connection stays in libpq's blocking mode: a status update is written with `PQputCopyData` and sent with
/// `PQflush`, which may wait briefly for socket space; the walsender reads replies while it writes, so the two
/// sides cannot deadlock.
public final class PostgresReplicationConnection {
    enum Mode {
        case commands
        case streaming
    }

    /// Owns the `PGconn`.
    let connection: PostgresConnection
    var mode = Mode.commands
    /// True once `startLogical` entered streaming: the walsender cannot stream again on this connection.
    var hasStreamed = false
    /// True when `PQflush` left bytes of a status update unsent.
    var isFlushPending = false

    private init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// Opens a replication connection to the database in `url` (`replication=database` overrides the URL's).
    ///
    /// - Parameter parameters: more libpq keywords, e.g. `("options", "-c wal_sender_timeout=10s")`.
    public static func connect(
        url: String, applicationName: String? = nil, parameters: [(keyword: String, value: String)] = []
    ) throws(PostgresError) -> PostgresReplicationConnection {
        let connection = try PostgresConnection.connect(
            url: url, applicationName: applicationName,
            extraParameters: parameters + [(keyword: "replication", value: "database")])
        return PostgresReplicationConnection(connection: connection)
    }

    /// Closes the connection (`PQfinish`); a temporary slot it created is dropped by the server. Idempotent.
    public func close() {
        connection.close()
        mode = .commands
    }

    /// True when closed or broken: reconnect.
    public var isConnectionLost: Bool { connection.isConnectionLost }

    /// True between `startLogical` and the end of the stream.
    public var isStreaming: Bool { mode == .streaming }

    /// The walsender's process ID (`pg_stat_replication.pid`).
    public var backendPID: Int32 { connection.backendPID }

    /// The socket, for an event loop to watch for readability; owned by the connection (never close it).
    public var socketDescriptor: Int32 { connection.socketDescriptor }

    // MARK: - Commands

    /// `IDENTIFY_SYSTEM`: the cluster's identity and current WAL position.
    public func identifySystem() throws(PostgresError) -> PostgresSystemIdentity {
        let result = try command("IDENTIFY_SYSTEM", name: "replication.identifySystem")
        guard result.rowCount == 1 else { throw unexpectedRows(result, name: "IDENTIFY_SYSTEM") }
        let row = result[0]
        let systemIDText = try row.string("systemid")
        guard let systemID = UInt64(systemIDText) else {
            throw PostgresError(
                code: .malformedMessage, message: "IDENTIFY_SYSTEM systemid is not a number: \(systemIDText.prefix(40))"
            )
        }
        let timeline = try row.int64("timeline")
        guard let timeline = UInt32(exactly: timeline) else {
            throw PostgresError(code: .malformedMessage, message: "IDENTIFY_SYSTEM timeline out of range: \(timeline)")
        }
        return PostgresSystemIdentity(
            systemID: systemID, timeline: timeline,
            walPosition: try LSN(parsing: row.string("xlogpos"), what: "IDENTIFY_SYSTEM xlogpos"),
            database: try row.optionalString("dbname"))
    }

    /// `CREATE_REPLICATION_SLOT name [TEMPORARY] LOGICAL plugin NOEXPORT_SNAPSHOT`; returns the slot's
    /// consistent point: changes committed after it will be streamed.
    ///
    /// Blocks until every transaction running on the cluster when it was called has ended (the slot needs a
    /// consistent snapshot), so a long transaction anywhere on the cluster delays it. A temporary slot exists
    /// only for this connection's session (see the type's notes on errors) and cannot be used by another one.
    /// - Throws: `invalidIdentifier` for a name PostgreSQL would refuse (see `validateSlotName`); the server's
    ///   error (SQLSTATE 42710) when the slot exists.
    public func createLogicalSlot(name: String, plugin: String = "pgoutput", isTemporary: Bool = false)
        throws(PostgresError) -> LSN
    {
        try Self.validateSlotName(name)
        let sql =
            "CREATE_REPLICATION_SLOT \(name)\(isTemporary ? " TEMPORARY" : "") LOGICAL "
            + "\(try PostgresIdentifier.quoteName(plugin)) NOEXPORT_SNAPSHOT"
        let result = try command(sql, name: "replication.createSlot")
        guard result.rowCount == 1 else { throw unexpectedRows(result, name: "CREATE_REPLICATION_SLOT") }
        return try LSN(parsing: result[0].string("consistent_point"), what: "CREATE_REPLICATION_SLOT consistent_point")
    }

    /// `DROP_REPLICATION_SLOT name [WAIT]`: without `wait`, a slot in use by another session is an error
    /// (SQLSTATE 55006) instead of a wait.
    public func dropSlot(name: String, wait: Bool = false) throws(PostgresError) {
        try Self.validateSlotName(name)
        try command("DROP_REPLICATION_SLOT \(name)\(wait ? " WAIT" : "")", name: "replication.dropSlot")
    }

    /// Checks a slot name as PostgreSQL does (`ReplicationSlotValidateName`): 1–63 bytes of `a-z`, `0-9`, `_`.
    /// Such a name needs no quoting in a replication command.
    public static func validateSlotName(_ name: String) throws(PostgresError) {
        let isValid =
            !name.isEmpty && name.utf8.count <= 63
            && name.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
            }
        guard isValid else {
            throw PostgresError(
                code: .invalidIdentifier,
                message: "replication slot names are 1-63 characters of a-z, 0-9 and _: \(name.prefix(80))")
        }
    }

    /// Runs one replication command (simple query protocol, the only one a walsender speaks).
    @discardableResult
    private func command(_ sql: String, name: String) throws(PostgresError) -> PostgresResult {
        try requireMode(.commands, name: name)
        return try connection.executeScript(sql, name: name)
    }

    private func unexpectedRows(_ result: PostgresResult, name: String) -> PostgresError {
        PostgresError(code: .protocolError, message: "\(name) returned \(result.rowCount) rows", queryName: name)
    }

    func requireMode(_ expected: Mode, name: String) throws(PostgresError) {
        guard mode == expected else {
            throw PostgresError(
                code: .wrongReplicationState,
                message: mode == .streaming
                    ? "the connection is streaming: stop the stream first" : "the connection is not streaming",
                queryName: name)
        }
    }

    /// The live `PGconn`.
    var handle: OpaquePointer {
        get throws(PostgresError) { try connection.liveHandle(name: "replication") }
    }
}

/// What `IDENTIFY_SYSTEM` reports.
public struct PostgresSystemIdentity: Sendable, Hashable {
    /// The cluster's unique system identifier (`pg_control_system().system_identifier`).
    public var systemID: UInt64
    /// The current timeline.
    public var timeline: UInt32
    /// The current WAL flush position.
    public var walPosition: LSN
    /// The database the connection is attached to (nil for a physical replication connection).
    public var database: String?

    public init(systemID: UInt64, timeline: UInt32, walPosition: LSN, database: String?) {
        self.systemID = systemID
        self.timeline = timeline
        self.walPosition = walPosition
        self.database = database
    }
}
