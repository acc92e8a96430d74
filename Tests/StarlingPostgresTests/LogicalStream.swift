import StarlingPostgres
import StarlingTestSupport

/// Test helper: a pgoutput stream on a test database, decoding every XLogData and keeping the relation cache.
///
/// Owns its `PostgresReplicationConnection` (closed by `close()`, which also drops a temporary slot) and is
/// used by one test body only. Waits are bounded by `timeout`; nothing sleeps.
final class LogicalStream {
    /// A message as decoded, with the frame it came in.
    struct Received {
        var message: PgOutputMessage
        var walStart: LSN
        var walEnd: LSN
    }

    struct TimedOut: Error, CustomStringConvertible {
        var what: String
        var description: String { "timed out waiting for \(what)" }
    }

    struct Unexpected: Error, CustomStringConvertible {
        var description: String
    }

    private(set) var replication: PostgresReplicationConnection
    let url: String
    let parameters: [(keyword: String, value: String)]
    let slot: String
    let publication: String
    var relations = PgOutputRelationCache()
    /// Keepalives seen while reading, oldest first.
    var keepalives: [PostgresReplicationMessage.Keepalive] = []
    let timeout: Duration

    /// Opens a replication connection to `db`, creates slot `slot` (temporary unless told) and nothing else.
    init(
        db: TestDatabase, slot: String, publication: String, isTemporary: Bool = true,
        parameters: [(keyword: String, value: String)] = [], timeout: Duration = .seconds(30)
    ) throws {
        replication = try PostgresReplicationConnection.connect(
            url: db.url, applicationName: "starling-tests-wal", parameters: parameters)
        self.url = db.url
        self.parameters = parameters
        self.slot = slot
        self.publication = publication
        self.timeout = timeout
        do {
            consistentPoint = try replication.createLogicalSlot(name: slot, isTemporary: isTemporary)
        } catch {
            replication.close()
            throw error
        }
    }

    /// Where the slot became consistent.
    private(set) var consistentPoint = LSN.invalid

    /// START_REPLICATION with pgoutput v1, `messages` on; a fresh session forgets the relations.
    func start(from start: LSN = .invalid, includesMessages: Bool = true) throws {
        relations.removeAll()
        try replication.startLogical(
            slot: slot, from: start,
            options: try PgOutputOptions(publications: [publication], includesMessages: includesMessages).options())
    }

    /// The next pgoutput message (keepalives are recorded and skipped); changes are checked against the cache.
    func next() throws -> Received {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while clock.now < deadline {
            guard let frame = try replication.next(timeout: .milliseconds(500)) else { continue }
            switch frame {
            case .keepalive(let keepalive):
                keepalives.append(keepalive)
            case .xLogData(let data):
                let message = try PgOutputDecoder.decode(data.payload)
                try check(message)
                return Received(message: message, walStart: data.walStart, walEnd: data.walEnd)
            }
        }
        throw TimedOut(what: "a pgoutput message")
    }

    /// Reads one whole transaction, Begin to Commit; throws when the next message is not a Begin.
    func transaction() throws -> [PgOutputMessage] {
        try transactionFrames().map(\.message)
    }

    /// One whole transaction with each message's frame positions.
    func transactionFrames() throws -> [Received] {
        let first = try next()
        guard case .begin = first.message else {
            throw Unexpected(description: "expected Begin, got \(first.message)")
        }
        var frames = [first]
        while true {
            let frame = try next()
            frames.append(frame)
            if case .commit = frame.message { return frames }
            if case .begin = frame.message { throw Unexpected(description: "Begin inside a transaction") }
        }
    }

    /// One transaction without its Relation and Type messages (they are recorded in `relations`). The server may
    /// announce a relation again before any change — whenever pgoutput's cache entry was invalidated (DDL,
    /// TRUNCATE, a shared-invalidation reset on a busy cluster) — so tests that count or index changes use this.
    func changes() throws -> [PgOutputMessage] {
        try transaction().filter { !$0.isSchema }
    }

    /// Reads keepalives until one satisfies `condition`; any XLogData in between is an error.
    func keepalive(where condition: (PostgresReplicationMessage.Keepalive) -> Bool) throws
        -> PostgresReplicationMessage.Keepalive
    {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while clock.now < deadline {
            switch try replication.next(timeout: .milliseconds(500)) {
            case nil: continue
            case .keepalive(let keepalive)?:
                keepalives.append(keepalive)
                if condition(keepalive) { return keepalive }
            case .xLogData(let data)?:
                throw Unexpected(description: "XLogData while idle: \(try PgOutputDecoder.decode(data.payload))")
            }
        }
        throw TimedOut(what: "a keepalive")
    }

    func close() {
        replication.close()
    }

    /// Closes the connection and opens a new one (a walsender streams once per connection).
    func reconnect() throws {
        replication.close()
        replication = try PostgresReplicationConnection.connect(
            url: url, applicationName: "starling-tests-wal", parameters: parameters)
    }

    private func check(_ message: PgOutputMessage) throws {
        if relations.record(message) { return }
        switch message {
        case .insert(let insert):
            _ = try relations.relation(for: insert.relationOID, matching: insert.newTuple)
        case .update(let update):
            _ = try relations.relation(for: update.relationOID, matching: update.newTuple)
            if let old = update.oldTuple { _ = try relations.relation(for: update.relationOID, matching: old.tuple) }
        case .delete(let delete):
            _ = try relations.relation(for: delete.relationOID, matching: delete.oldTuple.tuple)
        default:
            break
        }
    }
}

/// A name no other test (or engineer) uses: slots and origins are cluster-wide. Lower case, digits, `_`.
func uniqueName(_ prefix: String) -> String {
    "\(prefix)_\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
}

/// Runs `body` with a test database holding `setupSQL` and a publication, and a stream with a temporary slot;
/// closes the stream (dropping the slot) before the database is dropped.
func withLogicalStream<T>(
    setupSQL: String, publicationTables: String = "ALL TABLES", publicationName: String? = nil,
    isTemporary: Bool = true,
    parameters: [(keyword: String, value: String)] = [],
    _ body: (TestDatabase, PostgresConnection, LogicalStream) async throws -> T
) async throws -> T {
    try await TestDatabase.with { db in
        let sql = try db.connect()
        defer { sql.close() }
        try sql.executeScript(setupSQL)
        let publication = publicationName ?? uniqueName("starling_wal_pub")
        try sql.executeScript(
            "CREATE PUBLICATION \(try PostgresIdentifier.quoteName(publication)) FOR \(publicationTables)")
        // Creating the slot waits for every transaction running in the cluster (other tests' too): off the pool.
        let stream = try await offPool {
            try LogicalStream(
                db: db, slot: uniqueName("starling_wal_slot"), publication: publication, isTemporary: isTemporary,
                parameters: parameters)
        }
        do {
            let value = try await body(db, sql, stream)
            try await dropSlot(of: stream, using: sql)
            return value
        } catch {
            try? await dropSlot(of: stream, using: sql)
            throw error
        }
    }
}

/// Closes the stream; a persistent slot is dropped once its walsender has let go of it (a temporary one goes
/// with the session). Slots left behind would keep WAL.
func dropSlot(of stream: LogicalStream, using sql: PostgresConnection) async throws {
    stream.close()
    try await waitUntil("slot \(stream.slot) is released") {
        try sql.replicationSlot(named: stream.slot)?.isActive != true
    }
    if try sql.replicationSlot(named: stream.slot) != nil {
        try sql.execute("SELECT pg_drop_replication_slot($1)", [.text(stream.slot)])
    }
}

extension PgOutputTuple {
    /// Shorthand for tests: text values, `nil` for NULL.
    static func texts(_ values: [String?]) -> PgOutputTuple {
        PgOutputTuple(values.map { $0.map(PgOutputValue.text) ?? .null })
    }
}

extension PgOutputMessage {
    /// True for Relation and Type messages.
    var isSchema: Bool {
        switch self {
        case .relation, .type: return true
        default: return false
        }
    }
}
