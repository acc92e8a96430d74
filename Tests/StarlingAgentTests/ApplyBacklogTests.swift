import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// The apply's cost per entry does not grow with the region's own backlog of pending changes, nor with the
/// size of the pulled batch. Measured in rows the test's own database examined (index entries read and rows
/// scanned, as `pg_stat_user_indexes` and `pg_stat_user_tables` count them), which the machine's load does not
/// move, instead of seconds: a scan that grows with the backlog reads its rows whatever they cost in time.
@Suite("Apply cost against a local backlog", .serialized)
struct ApplyBacklogTests {
    static let ddl = """
        CREATE TABLE items (id bigint PRIMARY KEY, region text, qty integer, payload text);
        CREATE TABLE other (id bigint PRIMARY KEY, v text);
        """

    /// `count` inserts of new keys from `keyBase`, seqs from `firstSeq`.
    static func entries(count: Int, firstSeq: Int64, keyBase: Int64) -> [LogEntry] {
        (0..<Int64(count)).map { i in
            LogEntry(
                seq: firstSeq + i, origin: "x", id: "x:\(firstSeq + i)", tx: "x:\(firstSeq + i)", table: "public.items",
                op: .insert, key: ["id": .integer(keyBase + i)],
                row: [
                    "id": .integer(keyBase + i), "region": .string("x"), "qty": .integer(i),
                    "payload": .string(String(repeating: "p", count: 100)),
                ], hlc: 1000 + i, kind: .change, rewritten: false)
        }
    }

    /// Index entries read plus rows read by sequential scans in this database so far, flushed and read fresh.
    static func rowsExamined(_ connection: PostgresConnection) throws -> Int64 {
        try connection.execute("SELECT pg_stat_force_next_flush()")
        try connection.execute("SELECT 1")
        try connection.execute("SELECT pg_stat_clear_snapshot()")
        return try connection.query(
            """
            SELECT ((SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes)
                  + (SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_user_tables))::bigint
            """)[0].int64(0)
    }

    @Test("rows examined per entry stay flat with 100,000 pending local changes and 5,000-entry pulls")
    func flatInBacklogAndBatch() async throws {
        // Proves: a 5,000-entry batch costs about as much per entry as a 500-entry one, and the same 5,000
        // entries cost about as much with 100,000 local changes waiting in the outbox as with none; a check
        // whose cost grew with batch × pending changes would be hundreds of times over these bounds.
        // The measurement blocks in libpq for a minute on a loaded machine (the 100,000-row insert): off the
        // cooperative pool, which other tests need meanwhile.
        try await TestDatabase.with { database in
            let cost = try await offPool { try Self.measure(database) }
            let (small, large, backlog) = (cost.small, cost.large, cost.backlog)
            #expect(cost.appliedAll, "every entry of every batch applied, 120,000 changes pending")
            print("apply rows examined per entry: 500-entry batch \(small), 5000 \(large), 5000 with backlog \(backlog)")
            #expect(large < small * 1.5 + 2, "batch of 5000: \(large) per entry vs \(small) for 500")
            #expect(backlog < large * 1.5 + 2, "with 100,000 pending: \(backlog) per entry vs \(large) without")
        }
    }

    struct Cost: Sendable { var small = 0.0, large = 0.0, backlog = 0.0, appliedAll = true }

    /// Rows examined per entry: for a 500-entry batch, a 5,000-entry one, and a 5,000-entry one with 100,000
    /// local changes pending. Blocks (run it off the cooperative pool).
    static func measure(_ database: TestDatabase) throws -> Cost {
        let connection = try AgentTestSupport.region(
            database, ddl: Self.ddl, tables: ["public.items", "public.other"])
        defer { connection.close() }
        let store = AgentStore(region: "r")
        var seq: Int64 = 0
        var cost = Cost()
        func perEntry(_ count: Int) throws -> Double {
            let before = try Self.rowsExamined(connection)
            let summary = try store.apply(
                Self.entries(count: count, firstSeq: seq + 1, keyBase: 10_000_000 + seq), after: seq,
                next: seq + Int64(count), connection: connection)
            if summary.applied != count { cost.appliedAll = false }
            seq += Int64(count)
            return Double(try Self.rowsExamined(connection) - before) / Double(count)
        }
        // Warm-up: the catalog caches, and past the five custom plans after which PL/pgSQL may keep a generic
        // plan of each statement for the session (one that cannot see how many keys a batch holds).
        for _ in 0..<6 { _ = try perEntry(500) }
        cost.small = try perEntry(500)
        cost.large = try perEntry(5000)
        // Statistics that misjudge the backlog, as a busy outbox's often do (autoanalyze ran while it held
        // other rows): the planner then believes few rows of `items` wait, and a check that is cheap only
        // under that belief shows (seen in W1 at R=8: one filter over 35,700 rows × 5,000 keys, 62 s).
        try connection.execute("ALTER TABLE starling.outbox SET (autovacuum_enabled = false)")
        try connection.execute("INSERT INTO other SELECT g, 'o' FROM generate_series(1, 20000) g")
        try connection.execute("ANALYZE starling.outbox")
        try connection.execute(
            "INSERT INTO items SELECT g, 'r', 0, repeat('l', 100) FROM generate_series(1, 100000) g")
        let pending = try connection.query("SELECT count(*) FROM starling.outbox")[0].int64(0)
        if pending != 120_000 { cost.appliedAll = false }
        cost.backlog = try perEntry(5000)
        return cost
    }
}
