import Glibc
import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport

/// Shared helpers of the agent tests: the agent's schema, a region database with the schema
/// and triggers installed, and row fingerprints.
enum AgentTestSupport {
    /// The logical messages a `test_decoding` slot has decoded (consumed), read until one satisfies `until`: the
    /// agent's transactions commit without waiting for their WAL flush, so the slot sees them once the WAL writer
    /// has flushed (polled every 2 ms, for at most 30 s).
    static func decodedMessages(
        slot: String, connection: PostgresConnection, until: (String) -> Bool
    ) throws -> [String] {
        var messages: [String] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while !messages.contains(where: until) {
            guard ContinuousClock.now < deadline else {
                throw PostgresError(code: .queryFailed, message: "slot \(slot) decoded no such message: \(messages)")
            }
            messages += try connection.query(
                "SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL) WHERE data LIKE 'message:%'", [.text(slot)]
            ).map { row in try row.string("data") }
            usleep(2_000)
        }
        return messages
    }

    /// The agent's schema with the migrations embedded in the binary, as `starling agent` installs it.
    static func schema() -> AgentSchema {
        AgentSchema()
    }

    /// The root of this checkout (for `Migrations/`).
    static let repositoryRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]) }
        return path
    }()

    /// Creates `ddl` tables, installs the agent for `tables` and returns the connection.
    static func region(_ database: TestDatabase, ddl: String, tables: [String]) throws -> PostgresConnection {
        let connection = try database.connect()
        try connection.executeScript(ddl)
        try install(tables: tables, connection: connection)
        return connection
    }

    static func install(tables: [String], connection: PostgresConnection) throws {
        let shapes = try tables.map { try TableShape.load(table: $0, connection: connection) }
        try schema().install(tables: shapes, connection: connection)
    }

    /// Outbox rows in id order.
    static func outbox(_ connection: PostgresConnection) throws -> [OutboxChange] {
        try AgentStore(region: "r").nextBatch(connection: connection, maxCount: 100_000, maxBytes: 1 << 30)
    }

    /// md5 of every row's text form in key order: equal fingerprints mean identical contents.
    static func fingerprint(_ table: String, orderBy: String, _ connection: PostgresConnection) throws -> String {
        try connection.query(
            "SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY \(orderBy))), 'empty') AS h FROM \(table) t"
        )[0].string("h")
    }

    /// Turns outbox rows into log entries as the hub would accept them (seq from `firstSeq` on).
    static func entries(_ rows: [OutboxChange], origin: String, firstSeq: Int64) -> [LogEntry] {
        rows.enumerated().map { index, row in
            LogEntry(
                seq: firstSeq + Int64(index), origin: origin, id: "\(origin):\(row.id)", tx: "\(origin):\(row.tx)",
                table: row.table, op: row.op, key: row.key, row: row.after, hlc: row.capturedAt, kind: .change,
                rewritten: false)
        }
    }
}
