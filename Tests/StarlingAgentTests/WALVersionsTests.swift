@testable import StarlingAgent
import StarlingCore
import StarlingHub
import StarlingPostgres
import StarlingTestSupport
import Testing

/// WAL capture keeps no version rows: the versions above the cursor that verdicts gave keys live in the agent's
/// memory (``CaptureQueue``), fed by the verdicts as they commit and, after a restart, by the decoder reading
/// their markers again. These tests prove the applies skip by them across a restart.
@Suite("WAL capture: versions in memory", .serialized, .timeLimit(.minutes(3)))
struct WALVersionsTests {
    @Test("a verdict's version above the cursor outlives a restart: an older entry pulled afterwards is skipped")
    func verdictVersionSurvivesRestart() async throws {
        // r2 updates rows 2 and 1 in one transaction; in r1 a session holds row 2, so r1's apply of that
        // transaction keeps timing out on its lock and r1's cursor stays before it. Meanwhile r1 updates row 1
        // itself: its change wins over r2's older one (lww) at a seq above r2's entry. r1's agent is stopped
        // with that verdict handled and the entry not applied, the lock goes, and the agent starts again: the
        // entry on row 1 must be skipped (r1's own image is the head), which it knows only from the verdict's
        // marker in the WAL. Without the version, r1 keeps r2's image of row 1 and never converges.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let (r1, r2) = (cluster["r1"], cluster["r2"])
            let first = try cluster.startAgent("r1", tune: WALCaptureTests.wal)
            try cluster.startAgent("r2", tune: WALCaptureTests.wal)
            try await cluster.waitUntilStarted("r1")
            try await cluster.waitUntilStarted("r2")
            try await r1.execute("INSERT INTO items VALUES (1, 0, 'start'), (2, 0, 'start')")
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
            let blocker = try PostgresConnection.connect(url: r1.database.url)
            defer { blocker.close() }
            try blocker.execute("BEGIN")
            try blocker.query("SELECT id FROM items WHERE id = 2 FOR UPDATE")

            // Row 2 first: r1's apply then waits on the blocker before it writes row 1, so r1's own update of row 1
            // below never queues behind the apply's retries.
            try await r2.sql { connection in
                try connection.executeScript(
                    "BEGIN; UPDATE items SET note = 'r2' WHERE id = 2; UPDATE items SET note = 'r2' WHERE id = 1; COMMIT")
            }
            try await waitUntil("the hub logged r2's transaction") {
                try await WALCaptureTests.logged(cluster, from: "r2") == 2
            }
            try await r1.execute("UPDATE items SET note = 'r1' WHERE id = 1")
            try await waitUntil("r1's change of row 1 won at the hub") {
                try await cluster.hubDatabase.withConnection { connection in
                    try connection.query(
                        "SELECT count(*) FROM starling_hub.heads WHERE table_name = 'public.items' AND origin = 'r1' "
                            + "AND row::jsonb ->> 'note' = 'r1'")[0].int64(0) == 1
                }
            }
            try await waitUntil("r1 handled its verdict") { first.progress.pushedChanges >= 3 && first.progress.captureQueued == 0 }
            let r2Seq = try await cluster.hubDatabase.withConnection { connection in
                try connection.query("SELECT min(seq) FROM starling_hub.log WHERE origin = 'r2'")[0].int64(0)
            }
            #expect(first.progress.cursor < r2Seq, "r1's apply of r2's transaction must still wait on the lock")
            try await first.stop()
            try blocker.execute("ROLLBACK")

            try cluster.startAgent("r1", tune: WALCaptureTests.wal)
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items", timeout: .seconds(30))
            #expect(try await r1.text("SELECT note FROM items WHERE id = 1") == "r1")
            #expect(try await r1.text("SELECT note FROM items WHERE id = 2") == "r2")
            #expect(try await r1.int("SELECT count(*) FROM starling.versions WHERE seq > 2") == 0, "no version rows")
        }
    }

    static func repair(_ seq: Int64, key: Int64, base: Int64, row: JSONObject?) -> LogEntry {
        LogEntry(
            seq: seq, origin: "hub", id: "repair:1:\(seq)", tx: "repair:1:eu", table: "public.items",
            op: row == nil ? .delete : .update, key: ["id": .integer(key)], row: row, hlc: 1000 + seq, kind: .repair,
            rewritten: true, base: base)
    }

    @Test("the WAL apply writes the rows only, skips by the versions it is given, defers pending keys")
    func applyInMemory() async throws {
        // Proves the in-memory rules at store level: an entry at or below a key's version is skipped, a repair
        // only below (it re-asserts the head seq, its base), a pending key's entry is deferred and the newest
        // entry of a key is the one written; no version row is written; a unique clash dead-letters that entry
        // alone (per-entry fallback) and the rest of the batch is applied.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: ApplyTests.items, tables: ["public.items"])
            let store = AgentStore(region: "eu")
            try connection.execute("INSERT INTO items VALUES (5, 0, 'taken')")
            func key(_ id: Int64) -> TableKey { TableKey(table: "public.items", key: ["id": .integer(id)]) }
            let entries = [
                ApplyTests.entry(21, key: 1, row: ["id": 1, "qty": 21, "name": "a21"]),  // version 25: skipped
                ApplyTests.entry(22, key: 2, row: ["id": 2, "qty": 22, "name": "b"]),  // pending: deferred
                Self.repair(23, key: 3, base: 20, row: ["id": 3, "qty": 23, "name": "c"]),  // version 22 > base: skipped
                Self.repair(24, key: 4, base: 20, row: ["id": 4, "qty": 24, "name": "d"]),  // version 20 = base: written
                ApplyTests.entry(26, key: 1, row: ["id": 1, "qty": 26, "name": "a26"]),  // above 25: written
                ApplyTests.entry(27, key: 6, row: ["id": 6, "qty": 27, "name": "taken"]),  // unique clash: dead letter
                ApplyTests.entry(28, key: 7, row: ["id": 7, "qty": 1, "name": "g1"]),
                ApplyTests.entry(29, key: 7, row: ["id": 7, "qty": 2, "name": "g2"]),  // the newest of key 7 wins
            ]
            let wal = WALApply(pendingKeys: [key(2)], versions: [key(1): 25, key(3): 22, key(4): 20])
            let summary = try store.apply(entries, after: 0, next: 29, wal: wal, connection: connection)
            #expect(summary.skippedVersion == 2 && summary.skippedPending == 1 && summary.deadLettered == 1)
            #expect(summary.applied == 4 && summary.batchFallbacks == 1)
            let rows = try connection.query("SELECT string_agg(t::text, ' ' ORDER BY id) AS x FROM items t")[0]
            #expect(try rows.string("x") == "(1,26,a26) (4,24,d) (5,0,taken) (7,2,g2)")
            #expect(try connection.query("SELECT count(*) AS n FROM starling.versions")[0].int64("n") == 0)
            #expect(try connection.query("SELECT seq FROM starling.deferred_entries")[0].int64("seq") == 22)
            #expect(try connection.query("SELECT seq FROM starling.dead_letters")[0].int64("seq") == 27)
            #expect(try store.state(connection: connection).cursor == 29)
        }
    }

    /// Batch functions of earlier versions, as a table installed then has them: the one-document one, and the
    /// two-document one of wrapped members (`{"r": row}`, `{"k": key}`).
    static let earlierBatchFunctions = [
        """
        (p_entries jsonb, OUT error_state text, OUT error_message text) LANGUAGE plpgsql AS $f$
        BEGIN
            DELETE FROM public.items t USING jsonb_to_recordset(p_entries) AS w(k jsonb, r jsonb, s bigint)
                WHERE w.r IS NULL AND t.id = (w.k ->> 'id')::integer;
            INSERT INTO public.items SELECT r.* FROM jsonb_to_recordset(p_entries) AS w(k jsonb, r jsonb, s bigint),
                jsonb_populate_record(NULL::public.items, w.r) r WHERE w.r IS NOT NULL ORDER BY w.s
                ON CONFLICT (id) DO UPDATE SET qty = EXCLUDED.qty, name = EXCLUDED.name;
        END $f$
        """,
        """
        (p_upserts jsonb, p_deletes jsonb, OUT error_state text, OUT error_message text) LANGUAGE plpgsql AS $f$
        BEGIN
            IF p_deletes IS NOT NULL THEN
                DELETE FROM public.items t USING jsonb_to_recordset(p_deletes) AS w(k jsonb)
                    WHERE t.id = (w.k ->> 'id')::integer;
            END IF;
            IF p_upserts IS NOT NULL THEN
                INSERT INTO public.items SELECT r.* FROM jsonb_to_recordset(p_upserts) AS w(r jsonb),
                    jsonb_populate_record(NULL::public.items, w.r) r
                    ON CONFLICT (id) DO UPDATE SET qty = EXCLUDED.qty, name = EXCLUDED.name;
            END IF;
        END $f$
        """,
    ]

    @Test(
        "a table drifted when an upgraded agent starts keeps its old batch function behind a shim: held entries apply",
        arguments: earlierBatchFunctions)
    func driftedTableGetsBatchShim(earlier: String) async throws {
        // Proves: install skips a drifted table, so an earlier version's batch function stays; the shim gives it the
        // current name, signature and members, and once the shape is back the apply writes through it, the delete
        // included (without the shim the call fails: function does not exist; the two-document function given bare
        // members deletes nothing and reports no error).
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: ApplyTests.items, tables: ["public.items"])
            try connection.execute("UPDATE starling.synced_tables SET bootstrapped_at = now()")
            let sql = try TableSQL(shape: try TableShape.load(table: "public.items", connection: connection))
            try connection.executeScript(
                """
                DROP FUNCTION \(sql.applyWALRowsFunction)(jsonb, jsonb);
                CREATE FUNCTION \(sql.applyWALBatchFunction)\(earlier);
                INSERT INTO items VALUES (2, 0, 'two');
                ALTER TABLE items ADD COLUMN extra integer;
                """)
            try AgentTestSupport.install(tables: ["public.items"], connection: connection)
            let shim = try connection.query(
                "SELECT to_regprocedure($1) IS NOT NULL AS ok", [.text("\(sql.applyWALRowsFunction)(jsonb, jsonb)")])
            #expect(try shim[0].bool("ok"))
            try connection.execute("ALTER TABLE items DROP COLUMN extra")
            let entries = [
                ApplyTests.entry(10, key: 1, row: ["id": 1, "qty": 10, "name": "one"]),
                ApplyTests.entry(11, key: 2, row: nil),
            ]
            let summary = try AgentStore(region: "eu").apply(
                entries, after: 0, next: 11, wal: WALApply(pendingKeys: [], versions: [:]), connection: connection)
            #expect(summary.applied == 2 && summary.batchFallbacks == 0)
            let rows = try connection.query("SELECT string_agg(t::text, ' ' ORDER BY id) AS x FROM items t")[0]
            #expect(try rows.string("x") == "(1,10,one)")
        }
    }

    @Test("an apply promises its deferral only when it can write nothing but its batch's keys", arguments: [
        ("", true),
        ("CREATE TABLE child (id integer PRIMARY KEY, item integer REFERENCES items ON DELETE CASCADE)", false),
        ("CREATE TABLE child (id integer PRIMARY KEY, item integer REFERENCES items)", true),
        ("""
         CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RETURN NEW; END $f$;
         CREATE TRIGGER audit AFTER UPDATE ON items FOR EACH ROW EXECUTE FUNCTION audit()
         """, false),
    ])
    func promiseOnlyWithoutSideWrites(ddl: String, promises: Bool) async throws {
        // Proves: the marker carries `deferredThrough` (the decoder then skips the apply's rows) for a plain table,
        // and not when a foreign key cascades from it or an application trigger may write elsewhere: those rows
        // could overwrite a pending local change the decoder must see. Read back with test_decoding.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: ApplyTests.items, tables: ["public.items"])
            if !ddl.isEmpty { try connection.executeScript(ddl) }
            let slot = "promise_\(UInt32.random(in: 0...UInt32.max))"
            // Waits for every transaction running in the cluster: on a thread of its own, off the cooperative pool.
            _ = try await database.withConnection { connection in
                try connection.query("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", [.text(slot)])
            }
            defer { _ = try? connection.query("SELECT pg_drop_replication_slot($1)", [.text(slot)]) }
            let through = StreamPosition(commitLSN: 0x100, number: 1)
            let summary = try AgentStore(region: "eu").apply(
                [ApplyTests.entry(10, key: 1, row: ["id": 1, "qty": 10, "name": "one"])], after: 0, next: 10,
                wal: WALApply(pendingKeys: [], versions: [:], deferredThrough: through), connection: connection)
            #expect(summary.applied == 1)
            // The apply commits without waiting for its WAL flush; a synchronous commit after it flushes it for the
            // slot to read.
            try connection.execute("CREATE TABLE flush_wal ()")
            let messages = try connection.query(
                "SELECT data FROM pg_logical_slot_peek_changes($1, NULL, NULL) WHERE data LIKE 'message:%starling%'",
                [.text(slot)]
            ).map { try $0.string("data") }
            #expect(messages.count == 1, "\(messages)")
            #expect(messages.first?.contains(#""d":[256,1]"#) == promises, "\(messages)")
        }
    }

    @Test("the versions in memory: the larger wins, only those above the cursor count, a caught-up queue keeps them")
    func queueVersions() {
        // Proves the catch-up rule: before the decoder has passed the position set at the first apply the applies
        // wait, and a reset (a restart of the agent's tasks) then forgets the versions; once caught up in this
        // process, a reset keeps them and needs no new catch-up target (every verdict since recorded its versions);
        // the applies wait only until the decoder has read again as far as before (CaptureQueueRestartTests).
        let queue = CaptureQueue(arrived: WakeUp())
        let one = TableKey(table: "public.items", key: ["id": 1])
        let two = TableKey(table: "public.items", key: ["id": 2])
        queue.recordVersions([one: 30, two: 10])
        queue.recordVersions([one: 20])
        #expect(queue.versions(of: [one, two], above: 15) == [one: 30])
        #expect(queue.needsCatchUpTarget && !queue.isCaughtUp)
        queue.reset()
        #expect(queue.versions(of: [one], above: 0).isEmpty, "not caught up: a reset forgets")
        queue.recordVersions([one: 30])
        queue.awaitCatchUp(to: LSN(rawValue: 100))
        #expect(!queue.needsCatchUpTarget && !queue.isCaughtUp)
        queue.decoded(through: LSN(rawValue: 99))
        #expect(!queue.isCaughtUp)
        queue.decoded(through: LSN(rawValue: 100))
        #expect(queue.isCaughtUp)
        queue.reset()
        #expect(!queue.isCaughtUp && !queue.needsCatchUpTarget)
        #expect(queue.versions(of: [one], above: 0) == [one: 30], "caught up: a reset keeps them")
        queue.decoded(through: LSN(rawValue: 100))
        #expect(queue.isCaughtUp)
    }

    /// Open conflicts the hub holds for `table`.
    static func openConflicts(_ cluster: AgentCluster, table: String) async throws -> Int64 {
        try await cluster.hubDatabase.withConnection { connection in
            try connection.query(
                "SELECT count(*) FROM starling_hub.conflicts WHERE table_name = $1 AND status = 'open'", [.text(table)]
            )[0].int64(0)
        }
    }

    @Test("manual policy under WAL capture: writes after an apply open no conflict, a concurrent write opens one")
    func manualPolicyNoFalseNoMissedConflict() async throws {
        // Proves the base from the stream on a table where every conflict stays open for an operator: a key
        // written in turn by three regions, each after it applied the previous write (also verdicts' versions
        // above the cursor, from r1's repeated writes), opens none — a base too low would open one per turn; and
        // a write made in r3 while its agent was stopped, on a key r1 changed meanwhile, opens exactly one — a
        // base too high would let it through silently.
        let tables: [HubConfiguration.Table] = [.init(name: "public.items", policy: "manual")]
        try await AgentCluster.with(regions: ["r1", "r2", "r3"], tables: tables) { cluster in
            var agents: [String: RunningAgent] = [:]
            for name in ["r1", "r2", "r3"] { agents[name] = try cluster.startAgent(name, tune: WALCaptureTests.wal) }
            for name in ["r1", "r2", "r3"] { try await cluster.waitUntilStarted(name) }
            let all = ["r1", "r2", "r3"]
            try await cluster["r1"].execute("INSERT INTO items VALUES (1, 0, 'start'), (2, 0, 'start')")
            try await cluster.waitUntilConverged(all, table: "items")
            for turn in 1...9 {
                let writer = all[turn % 3]
                try await cluster[writer].execute("UPDATE items SET qty = $1, note = $2 WHERE id = 1", [.int(turn), .text(writer)])
                if writer == "r1" {
                    try await cluster["r1"].execute("UPDATE items SET qty = qty + 100 WHERE id = 1")
                }
                try await cluster.waitUntilConverged(all, table: "items")
            }
            #expect(try await Self.openConflicts(cluster, table: "public.items") == 0, "a false conflict")

            try await agents["r3"]?.stop()
            try await cluster["r1"].execute("UPDATE items SET note = 'r1 while r3 is away' WHERE id = 2")
            try await cluster["r3"].execute("UPDATE items SET note = 'r3 offline' WHERE id = 2")
            try cluster.startAgent("r3", tune: WALCaptureTests.wal)
            try await waitUntil("r3's concurrent write reached the hub as an open conflict", timeout: .seconds(30)) {
                try await Self.openConflicts(cluster, table: "public.items") == 1
            }
            try await cluster.waitUntilConverged(all, table: "items")
            #expect(try await Self.openConflicts(cluster, table: "public.items") == 1)
            #expect(try await cluster["r3"].text("SELECT note FROM items WHERE id = 2") == "r1 while r3 is away")
        }
    }
}
