import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// The apply's cost per entry does not grow with the region's own backlog of pending changes, nor with the
/// size of the pulled batch. Measured in shared-buffer accesses of the test's own database (what
/// `pg_stat_database` counts), which the machine's load does not move, instead of seconds.
@Suite("Apply cost against a local backlog", .serialized)
struct ApplyBacklogTests {
    static let ddl = "CREATE TABLE items (id bigint PRIMARY KEY, region text, qty integer, payload text)"

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

    /// Buffer accesses (hits + reads) of this database so far, flushed and read fresh.
    static func buffers(_ connection: PostgresConnection) throws -> Int64 {
        try connection.execute("SELECT pg_stat_force_next_flush()")
        try connection.execute("SELECT 1")
        try connection.execute("SELECT pg_stat_clear_snapshot()")
        return try connection.query(
            "SELECT (blks_hit + blks_read)::bigint FROM pg_stat_database WHERE datname = current_database()")[0]
            .int64(0)
    }

    @Test("per-entry buffer accesses stay flat with 100,000 pending local changes and 5,000-entry pulls")
    func flatInBacklogAndBatch() async throws {
        // Proves: a 5,000-entry batch costs about as much per entry as a 500-entry one, and the same 5,000
        // entries cost about as much with 100,000 local changes waiting in the outbox as with none; a check
        // whose cost grew with batch × pending changes would be hundreds of times over these bounds.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.ddl, tables: ["public.items"])
            let store = AgentStore(region: "r")
            var seq: Int64 = 0
            func perEntry(_ count: Int) throws -> Double {
                let before = try Self.buffers(connection)
                let summary = try store.apply(
                    Self.entries(count: count, firstSeq: seq + 1, keyBase: 10_000_000 + seq), after: seq,
                    next: seq + Int64(count), connection: connection)
                #expect(summary.applied == count)
                seq += Int64(count)
                return Double(try Self.buffers(connection) - before) / Double(count)
            }
            // Warm-up: the functions' plans and the catalog caches.
            _ = try perEntry(500)
            let small = try perEntry(500)
            let large = try perEntry(5000)
            try connection.execute(
                "INSERT INTO items SELECT g, 'r', 0, repeat('l', 100) FROM generate_series(1, 100000) g")
            #expect(try connection.query("SELECT count(*) FROM starling.outbox")[0].int64(0) == 100_000)
            let backlog = try perEntry(5000)
            print("apply buffer accesses per entry: 500-entry batch \(small), 5000 \(large), 5000 with backlog \(backlog)")
            #expect(large < small * 1.5 + 5, "batch of 5000: \(large) per entry vs \(small) for 500")
            #expect(backlog < large * 1.5 + 5, "with 100,000 pending: \(backlog) per entry vs \(large) without")
        }
    }
}
