import Glibc
import StarlingPostgres
import StarlingTestSupport
import Testing

/// Real logical replication against the test cluster (wal_level=logical). Serialized: each test creates a
/// logical slot, and slot creation waits for every running transaction of the cluster to finish.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct PostgresReplicationTests {
    static let itemsSQL = """
        CREATE TABLE items (region text, id bigint, name varchar(20), price numeric(10,2), note text,
                            PRIMARY KEY (region, id))
        """

    /// Proves IDENTIFY_SYSTEM reports the cluster's system identifier, a timeline, the current WAL position and
    /// the connection's database.
    @Test func identifySystem() async throws {
        try await TestDatabase.with { db in
            let sql = try db.connect()
            defer { sql.close() }
            let replication = try PostgresReplicationConnection.connect(url: db.url)
            defer { replication.close() }
            let identity = try replication.identifySystem()
            let control = try sql.query(
                "SELECT system_identifier::text AS id, timeline_id, pg_current_wal_lsn()::text AS lsn "
                    + "FROM pg_control_system(), pg_control_checkpoint()")[0]
            #expect(String(identity.systemID) == (try control.string("id")))
            #expect(identity.timeline >= 1)
            #expect(Int64(identity.timeline) == (try control.int64("timeline_id")))
            #expect(identity.walPosition > .invalid)
            #expect(identity.walPosition <= (try LSN(parsing: control.string("lsn"), what: "lsn")))
            #expect(identity.database == db.name)
        }
    }

    /// Proves an insert and an update in one transaction and a delete in another arrive as Begin, Relation,
    /// Insert, Update, Commit and Begin, Delete, Commit, with every field as the server has it: OIDs, xid,
    /// column flags for a composite key, types and typmods, text values, NULL, LSNs and commit times.
    @Test func insertUpdateDeleteWithCompositeKey() async throws {
        try await withLogicalStream(setupSQL: Self.itemsSQL) { db, sql, stream in
            try stream.start()
            let oid = try relationOID("items", sql)
            let before = try serverMicroseconds(sql)
            try sql.executeScript("BEGIN")
            let xid = try currentXID(sql)
            try sql.execute("INSERT INTO items VALUES ('eu', 1, 'apple', 1.5, NULL)")
            try sql.execute("UPDATE items SET name = 'pear', note = 'it''s ✓' WHERE region = 'eu' AND id = 1")
            try sql.executeScript("COMMIT")
            let after = try serverMicroseconds(sql)
            let walAfter = try currentLSN(sql)

            let first = try stream.transaction()
            let relation = try #require(stream.relations[oid])
            #expect(first[1] == .relation(relation))
            let changes = first.filter { !$0.isSchema }
            try #require(changes.count == 4, "\(first)")
            guard case .begin(let begin) = changes[0], case .insert(let insert) = changes[1],
                case .update(let update) = changes[2], case .commit(let commit) = changes[3]
            else {
                Issue.record("unexpected messages \(first)")
                return
            }
            #expect(begin.xid == xid)
            #expect(begin.finalLSN == commit.commitLSN)
            #expect(begin.commitTime == commit.commitTime)
            #expect(commit.flags == 0)
            #expect(commit.commitLSN < commit.endLSN)
            #expect(commit.endLSN <= walAfter)
            #expect(commit.commitLSN > stream.consistentPoint)
            #expect((before...after).contains(commit.commitTime.unixMicroseconds))
            #expect(
                relation
                    == PgOutputRelation(
                        oid: oid, namespace: "public", name: "items", replicaIdentity: .default,
                        columns: [
                            .init(flags: 1, name: "region", typeOID: 25, typeModifier: -1),
                            .init(flags: 1, name: "id", typeOID: 20, typeModifier: -1),
                            .init(flags: 0, name: "name", typeOID: 1043, typeModifier: 24),
                            .init(flags: 0, name: "price", typeOID: 1700, typeModifier: (10 << 16 | 2) + 4),
                            .init(flags: 0, name: "note", typeOID: 25, typeModifier: -1),
                        ]))
            #expect(relation.columns.map(\.isKey) == [true, true, false, false, false])
            #expect(insert == .init(relationOID: oid, newTuple: .texts(["eu", "1", "apple", "1.50", nil])))
            // The default identity sends no old tuple when no key column changed.
            #expect(
                update
                    == .init(relationOID: oid, oldTuple: nil, newTuple: .texts(["eu", "1", "pear", "1.50", "it's ✓"])))

            try sql.execute("DELETE FROM items WHERE region = 'eu' AND id = 1")
            let second = try stream.changes()
            try #require(second.count == 3, "\(second)")
            guard case .begin(let begin2) = second[0], case .delete(let delete) = second[1],
                case .commit(let commit2) = second[2]
            else {
                Issue.record("unexpected messages \(second)")
                return
            }
            // The relation was announced once per session; the delete carries only the key.
            #expect(delete == .init(relationOID: oid, oldTuple: .key(.texts(["eu", "1", nil, nil, nil]))))
            #expect(begin2.xid != begin.xid)
            #expect(commit2.commitLSN >= commit.endLSN)
        }
    }

    /// Proves REPLICA IDENTITY FULL marks every column as key in the Relation and sends the whole old row ('O')
    /// with updates and deletes.
    @Test func replicaIdentityFullSendsTheWholeOldRow() async throws {
        try await withLogicalStream(setupSQL: Self.itemsSQL + "; ALTER TABLE items REPLICA IDENTITY FULL") {
            db, sql, stream in
            try stream.start()
            let oid = try relationOID("items", sql)
            try sql.execute("INSERT INTO items VALUES ('us', 7, 'fig', 2, 'n')")
            try sql.execute("UPDATE items SET price = 3 WHERE id = 7")
            try sql.execute("DELETE FROM items WHERE id = 7")
            _ = try stream.transaction()
            let relation = try #require(stream.relations[oid])
            #expect(relation.replicaIdentity == .full)
            #expect(relation.columns.allSatisfy { $0.isKey })
            let update = try stream.changes()
            #expect(
                update[1]
                    == .update(
                        .init(
                            relationOID: oid, oldTuple: .full(.texts(["us", "7", "fig", "2.00", "n"])),
                            newTuple: .texts(["us", "7", "fig", "3.00", "n"]))))
            let delete = try stream.changes()
            #expect(
                delete[1] == .delete(.init(relationOID: oid, oldTuple: .full(.texts(["us", "7", "fig", "3.00", "n"])))))
        }
    }

    /// Proves an UPDATE of a key column sends the old key ('K': key columns, others NULL) with the default
    /// identity, so the subscriber can find the row it moves.
    @Test func primaryKeyChangeShowsTheOldKey() async throws {
        try await withLogicalStream(setupSQL: Self.itemsSQL) { db, sql, stream in
            try stream.start()
            let oid = try relationOID("items", sql)
            try sql.execute("INSERT INTO items VALUES ('eu', 1, 'apple', 1, 'x')")
            try sql.execute("UPDATE items SET id = 2, name = 'moved' WHERE region = 'eu' AND id = 1")
            _ = try stream.transaction()
            let update = try stream.changes()
            #expect(
                update[1]
                    == .update(
                        .init(
                            relationOID: oid, oldTuple: .key(.texts(["eu", "1", nil, nil, nil])),
                            newTuple: .texts(["eu", "2", "moved", "1.00", "x"]))))
        }
    }

    /// Proves an UPDATE that leaves an out-of-line TOASTed column alone sends it as 'u' (unchanged, no value)
    /// in the new tuple. Recorded fact (PostgreSQL 15): with REPLICA IDENTITY FULL the old tuple ('O') carries
    /// the full value (the server flattens TOAST into the logged old row), while the new tuple still has 'u'.
    @Test func unchangedToastIsNotSent() async throws {
        let body = String(repeating: "0123456789abcdef", count: 1024)  // 16 KiB, well over the 2 kB threshold
        try await withLogicalStream(
            setupSQL: "CREATE TABLE docs (id int PRIMARY KEY, body text, n int); "
                + "ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL"
        ) { db, sql, stream in
            try stream.start()
            let oid = try relationOID("docs", sql)
            try sql.execute("INSERT INTO docs VALUES (1, $1, 0)", [.text(body)])
            // The value really is out of line: its chunks sit in the TOAST table (EXTERNAL: uncompressed).
            let toastTable = try sql.query(
                "SELECT reltoastrelid::regclass::text AS t FROM pg_class WHERE oid = 'docs'::regclass")[0].string("t")
            let chunks = try sql.query("SELECT count(*) AS n FROM \(try PostgresIdentifier.quote(toastTable))")
            #expect(try chunks[0].int64("n") >= 8)
            try sql.execute("UPDATE docs SET n = 1 WHERE id = 1")
            try sql.executeScript("ALTER TABLE docs REPLICA IDENTITY FULL")
            try sql.execute("UPDATE docs SET n = 2 WHERE id = 1")
            try sql.execute("UPDATE docs SET body = body || '!' WHERE id = 1")

            let insert = try stream.changes()
            #expect(insert[1] == .insert(.init(relationOID: oid, newTuple: .texts(["1", body, "0"]))))
            let untouched = try stream.changes()
            #expect(
                untouched[1]
                    == .update(
                        .init(
                            relationOID: oid, oldTuple: nil,
                            newTuple: PgOutputTuple([.text("1"), .unchangedToast, .text("1")]))))
            let full = try stream.transaction()
            // The identity changed: the Relation is sent again before the change.
            #expect(full.contains { $0.isSchema })
            #expect(stream.relations[oid]?.replicaIdentity == .full)
            #expect(
                full.filter { !$0.isSchema }[1]
                    == .update(
                        .init(
                            relationOID: oid, oldTuple: .full(.texts(["1", body, "1"])),
                            newTuple: PgOutputTuple([.text("1"), .unchangedToast, .text("2")]))))
            let changed = try stream.changes()
            #expect(
                changed[1]
                    == .update(
                        .init(
                            relationOID: oid, oldTuple: .full(.texts(["1", body, "2"])),
                            newTuple: .texts(["1", body + "!", "2"]))))
        }
    }

    /// Proves TRUNCATE arrives as one Truncate naming every truncated table, with CASCADE and RESTART IDENTITY
    /// as option bits.
    @Test func truncate() async throws {
        try await withLogicalStream(
            setupSQL: "CREATE TABLE a (id serial PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY REFERENCES a)"
        ) { db, sql, stream in
            try stream.start()
            let a = try relationOID("a", sql)
            let b = try relationOID("b", sql)
            // One simple-protocol string is one transaction.
            try sql.executeScript("INSERT INTO a DEFAULT VALUES; INSERT INTO b VALUES (1)")
            try sql.executeScript("TRUNCATE a, b RESTART IDENTITY CASCADE")
            try sql.executeScript("TRUNCATE b")
            _ = try stream.transaction()
            let both = try stream.transaction().compactMap { message -> PgOutputMessage.Truncate? in
                if case .truncate(let truncate) = message { return truncate }
                return nil
            }
            try #require(both.count == 1)
            #expect(both[0].isCascade && both[0].isRestartIdentity)
            #expect(Set(both[0].relationOIDs) == [a, b])
            // TRUNCATE gives the table a new relfilenode, which usually makes pgoutput announce it again first
            // (timing-dependent: the walsender must have seen the invalidation).
            let plain = try stream.changes()
            #expect(plain.count == 3)
            #expect(plain[1] == .truncate(.init(isCascade: false, isRestartIdentity: false, relationOIDs: [b])))
        }
    }

    /// Proves `pg_logical_emit_message(true, …)` arrives as a transactional Message between its transaction's
    /// changes, a non-transactional one arrives at once even when its transaction rolls back, and a
    /// transactional one of a rolled-back transaction never arrives.
    @Test func logicalMessages() async throws {
        try await withLogicalStream(setupSQL: "CREATE TABLE t (id int PRIMARY KEY)") { db, sql, stream in
            try stream.start()
            try sql.executeScript(
                """
                BEGIN;
                INSERT INTO t VALUES (1);
                SELECT pg_logical_emit_message(true, 'starling', 'x');
                INSERT INTO t VALUES (2);
                COMMIT
                """)
            let transaction = try stream.changes()
            try #require(transaction.count == 5, "\(transaction)")
            guard case .message(let message) = transaction[2], case .commit(let commit) = transaction[4] else {
                Issue.record("\(transaction)")
                return
            }
            #expect(message.isTransactional)
            #expect(message.prefix == "starling")
            #expect(message.content == Array("x".utf8))
            #expect(message.lsn > .invalid && message.lsn < commit.commitLSN)
            if case .insert = transaction[1], case .insert = transaction[3] {} else { Issue.record("\(transaction)") }

            try sql.executeScript(
                """
                BEGIN;
                SELECT pg_logical_emit_message(false, 'starling', 'now');
                SELECT pg_logical_emit_message(true, 'starling', 'never');
                INSERT INTO t VALUES (3);
                ROLLBACK
                """)
            try sql.execute("INSERT INTO t VALUES (4)")
            let immediate = try stream.next().message
            guard case .message(let outside) = immediate else {
                Issue.record("\(immediate)")
                return
            }
            #expect(!outside.isTransactional)
            #expect(outside.content == Array("now".utf8))
            let sentinel = try stream.changes()
            #expect(sentinel.count == 3)
            #expect(sentinel[1] == .insert(.init(relationOID: try relationOID("t", sql), newTuple: .texts(["4"]))))
        }
    }

    /// Proves a transaction made by a session with a replication origin set up carries an Origin message right
    /// after Begin, with the origin's name and the LSN given to pg_replication_origin_xact_setup, and that other
    /// sessions' transactions carry none. Needs a free replication origin state on the cluster (there are
    /// max_replication_slots of them, shared by every database): leaked origins elsewhere make it fail with 53400.
    @Test func originMessageFollowsBegin() async throws {
        try await withLogicalStream(setupSQL: "CREATE TABLE t (id int PRIMARY KEY)") { db, sql, stream in
            try stream.start()
            let origin = uniqueName("starling_origin")
            try sql.execute("SELECT pg_replication_origin_create($1)", [.text(origin)])
            defer { _ = try? sql.execute("SELECT pg_replication_origin_drop($1)", [.text(origin)]) }
            let applier = try db.connect()
            defer { applier.close() }
            try applier.execute("SELECT pg_replication_origin_session_setup($1)", [.text(origin)])
            try applier.executeScript("BEGIN")
            try applier.execute("SELECT pg_replication_origin_xact_setup('1/ABCDEF0', now())")
            try applier.execute("INSERT INTO t VALUES (1)")
            try applier.executeScript("COMMIT")
            try applier.execute("SELECT pg_replication_origin_session_reset()")
            try sql.execute("INSERT INTO t VALUES (2)")

            let applied = try stream.changes()
            try #require(applied.count == 4, "\(applied)")
            #expect(applied[1] == .origin(.init(originLSN: LSN(0x1_0ABC_DEF0), name: origin)))
            let local = try stream.transaction()
            #expect(!local.contains { if case .origin = $0 { true } else { false } })
        }
    }

    /// Proves the text form of many types survives the stream exactly as `col::text` prints it (numeric,
    /// bytea, float8 NaN and infinities, timestamptz, uuid, jsonb, arrays, enums, NULLs), and that a
    /// non-built-in type is announced with a Type message before the Relation.
    @Test func typeRoundTrip() async throws {
        let columns = [
            "i2 int2", "i4 int4", "i8 int8", "num numeric", "t text", "b bytea", "bo bool", "f8 float8",
            "ts timestamptz", "d date", "u uuid", "j jsonb", "ai int4[]", "at text[]", "m mood", "iv interval",
        ]
        let rows = [
            """
            1, -32768, 2147483647, 9223372036854775807, 123456789012345678901234567890.000000001, 'it''s "q" \\ ✓',
            '\\x00ff10', true, 'NaN', '2024-03-01 12:34:56.123456+00', '2024-02-29',
            'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2.5, null, "x"]}', '{1,NULL,3}',
            '{"a b","c,d","e\\"f",NULL}', 'happy', '1 day 02:03:04'
            """,
            "2, 0, 0, -9223372036854775808, -0.5, '', '\\x', false, 'Infinity', 'infinity', '-infinity', "
                + "'00000000-0000-0000-0000-000000000000', 'null', '{}', '{}', 'sad', '-1 year'",
            "3, NULL, NULL, NULL, 'NaN', NULL, NULL, NULL, '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
            "4, 1, 1, 1, 1e-20, 'x', NULL, NULL, 1.7976931348623157e308, '-infinity', '4713-01-01 BC', NULL, "
                + "'{\"a\":1}', '{{1,2},{3,4}}', NULL, NULL, NULL",
        ]
        let utc = [(keyword: "options", value: "-c TimeZone=UTC")]
        try await withLogicalStream(
            setupSQL: "CREATE TYPE mood AS ENUM ('happy', 'sad'); CREATE TABLE types (id int PRIMARY KEY, "
                + columns.joined(separator: ", ") + ")", parameters: utc
        ) { db, sql, stream in
            try sql.executeScript("SET TimeZone = 'UTC'")
            try stream.start()
            try sql.executeScript("BEGIN; " + rows.map { "INSERT INTO types VALUES (\($0));" }.joined() + " COMMIT")
            let transaction = try stream.transaction()
            let moodOID = UInt32(try sql.query("SELECT 'mood'::regtype::oid AS oid")[0].int64("oid"))
            let typeIndex = transaction.firstIndex(of: .type(.init(oid: moodOID, namespace: "public", name: "mood")))
            let relationIndex = transaction.firstIndex { if case .relation = $0 { true } else { false } }
            #expect(typeIndex != nil && relationIndex != nil && typeIndex! < relationIndex!)
            guard let relation = stream.relations[try relationOID("types", sql)] else {
                Issue.record("\(transaction)")
                return
            }
            #expect(relation.columns.first { $0.name == "m" }?.typeOID == moodOID)
            let inserted = transaction.compactMap { message -> PgOutputTuple? in
                if case .insert(let insert) = message { return insert.newTuple }
                return nil
            }
            try #require(inserted.count == rows.count)
            let names = ["id"] + columns.map { String($0.split(separator: " ")[0]) }
            // libpq's results are each type's text output too (no ::text casts: bool::text is 'true', not 't').
            let expected = try sql.query("SELECT " + names.joined(separator: ", ") + " FROM types ORDER BY id")
            for (row, tuple) in inserted.enumerated() {
                let texts = try (0..<names.count).map { (column) throws(PostgresError) in
                    try expected[row].optionalString(column)
                }
                #expect(tuple == .texts(texts), "row \(row + 1)")
            }
            // A few literal spellings, independent of the server's own output.
            #expect(inserted[0][6] == .text("\\x00ff10"))
            #expect(inserted[0][7] == .text("t"))
            #expect(inserted[0][8] == .text("NaN"))
            #expect(inserted[0][9] == .text("2024-03-01 12:34:56.123456+00"))
            #expect(inserted[1][8] == .text("Infinity"))
            #expect(inserted[2][8] == .text("-Infinity"))
            #expect(inserted[2][1] == .null)
            #expect(inserted[0][13] == .text("{1,NULL,3}"))
            #expect(inserted[0][14] == .text("{\"a b\",\"c,d\",\"e\\\"f\",NULL}"))
        }
    }

    /// Proves standby status updates move the slot's confirmed_flush_lsn, that pg_replication_slots reports a
    /// persistent slot (plugin, database, activity, retained WAL), and that dropSlot removes it.
    @Test func statusUpdatesMoveConfirmedFlush() async throws {
        try await withLogicalStream(setupSQL: "CREATE TABLE t (id int PRIMARY KEY)", isTemporary: false) {
            db, sql, stream in
            let idle = try #require(try sql.replicationSlot(named: stream.slot))
            #expect(idle.isLogical && !idle.isTemporary && !idle.isActive)
            #expect(idle.plugin == "pgoutput")
            #expect(idle.database == db.name)
            #expect(idle.confirmedFlushLSN == stream.consistentPoint)
            try stream.start()
            try await waitUntil("the slot is active") { try sql.replicationSlot(named: stream.slot)?.isActive == true }
            #expect(try sql.replicationSlot(named: stream.slot)?.activePID == stream.replication.backendPID)
            try sql.execute("INSERT INTO t VALUES (1)")
            guard case .commit(let commit) = try stream.transaction().last else {
                Issue.record("no commit")
                return
            }
            #expect(try sql.replicationSlot(named: stream.slot)?.confirmedFlushLSN ?? .invalid < commit.endLSN)
            try stream.replication.sendStatus(written: commit.endLSN, flushed: commit.endLSN, applied: commit.endLSN)
            try await waitUntil("confirmed_flush_lsn reaches \(commit.endLSN)") {
                (try sql.replicationSlot(named: stream.slot)?.confirmedFlushLSN ?? .invalid) >= commit.endLSN
            }
            let slot = try #require(try sql.replicationSlot(named: stream.slot))
            #expect(slot.confirmedFlushLSN == commit.endLSN)
            let restart = try #require(slot.restartLSN)
            #expect(restart <= commit.endLSN)
            #expect(slot.retainedWALBytes ?? -1 >= 0)
            #expect(slot.walStatus == "reserved")

            // Commands need command mode; dropSlot from the same connection once the stream stopped.
            let busy = #expect(throws: PostgresError.self) { try stream.replication.identifySystem() }
            #expect(busy?.code == .wrongReplicationState)
            try stream.replication.stopStreaming()
            try stream.replication.dropSlot(name: stream.slot)
            #expect(try sql.replicationSlot(named: stream.slot) == nil)
        }
    }

    /// Proves `bufferedMessage()` never reads the socket: with transactions waiting there it has nothing until
    /// `next(timeout:)` reads, and then hands out what that read brought, in order, without another read.
    @Test func bufferedMessagesComeOnlyFromWhatWasRead() async throws {
        try await withLogicalStream(setupSQL: "CREATE TABLE t (id int PRIMARY KEY)") { db, sql, stream in
            try stream.start()
            // What the start read with the server's answer can only be a keepalive.
            func drainBuffered() throws -> [PostgresReplicationMessage] {
                var drained: [PostgresReplicationMessage] = []
                while let message = try stream.replication.bufferedMessage() { drained.append(message) }
                return drained
            }
            func isKeepalive(_ message: PostgresReplicationMessage) -> Bool {
                if case .keepalive = message { return true }
                return false
            }
            #expect(try drainBuffered().allSatisfy(isKeepalive))
            for id in 1...3 { try sql.execute("INSERT INTO t VALUES ($1)", [.int(id)]) }
            // The three transactions are on their way (or in the socket); none of it is buffered before a read.
            #expect(try drainBuffered().isEmpty)
            var payloads: [PgOutputMessage] = []
            let deadline = ContinuousClock.now + .seconds(30)
            while payloads.count < 9, ContinuousClock.now < deadline {
                // One read (it may bring one message or many), then only what it brought.
                var message = try stream.replication.next(timeout: .milliseconds(500))
                while let received = message {
                    if case .xLogData(let data) = received {
                        let decoded = try PgOutputDecoder.decode(data.payload)
                        if case .relation = decoded {} else { payloads.append(decoded) }
                    }
                    message = try stream.replication.bufferedMessage()
                }
            }
            let kinds = payloads.map { message -> String in
                switch message {
                case .begin: "B"
                case .insert: "I"
                case .commit: "C"
                default: "?"
                }
            }
            #expect(kinds == ["B", "I", "C", "B", "I", "C", "B", "I", "C"])
            #expect(try stream.replication.bufferedMessage() == nil)
        }
    }

    /// Proves a restart from the confirmed LSN re-delivers exactly the transactions committed after it (and
    /// re-announces relations): stopStreaming releases the slot at once, a new connection streams from it.
    /// Recorded fact (PostgreSQL 15): a logical walsender streams once per connection — a second
    /// START_REPLICATION after CopyDone ends at once — so the connection refuses it and a restart reconnects.
    @Test func restartFromConfirmedLSNRedeliversTheRest() async throws {
        try await withLogicalStream(setupSQL: "CREATE TABLE t (id int PRIMARY KEY)", isTemporary: false) {
            db, sql, stream in
            try stream.start()
            let oid = try relationOID("t", sql)
            for id in 1...3 { try sql.execute("INSERT INTO t VALUES ($1)", [.int(id)]) }
            var commits: [PgOutputMessage.Commit] = []
            for _ in 1...3 {
                guard case .commit(let commit) = try stream.transaction().last else {
                    Issue.record("no commit")
                    return
                }
                commits.append(commit)
            }
            try stream.replication.sendStatus(written: commits[1].endLSN, flushed: commits[1].endLSN, applied: .invalid)
            try await waitUntil("confirmed_flush_lsn reaches the second commit") {
                try sql.replicationSlot(named: stream.slot)?.confirmedFlushLSN == commits[1].endLSN
            }
            try stream.replication.stopStreaming()
            #expect(!stream.replication.isStreaming)
            #expect(try sql.replicationSlot(named: stream.slot)?.isActive == false)
            let again = #expect(throws: PostgresError.self) { try stream.start(from: commits[1].endLSN) }
            #expect(again?.code == .wrongReplicationState)
            #expect(try stream.replication.identifySystem().database == db.name)

            try stream.reconnect()
            try stream.start(from: commits[1].endLSN)
            try sql.execute("INSERT INTO t VALUES (4)")
            let third = try stream.changes()
            #expect(third.count == 3)
            #expect(third[1] == .insert(.init(relationOID: oid, newTuple: .texts(["3"]))))
            #expect(third.last == .commit(commits[2]))
            let fourth = try stream.changes()
            #expect(fourth[1] == .insert(.init(relationOID: oid, newTuple: .texts(["4"]))))

            // From 0/0 the server starts at the confirmed position too.
            try stream.replication.stopStreaming()
            try stream.reconnect()
            try stream.start(from: .invalid)
            let fromConfirmed = try stream.transaction()
            #expect(fromConfirmed.last == .commit(commits[2]))
        }
    }

    /// Proves option values travel intact: a publication whose name has quotes, a comma and upper case streams.
    @Test func oddPublicationNameStreams() async throws {
        try await withLogicalStream(
            setupSQL: "CREATE TABLE t (id int PRIMARY KEY)", publicationTables: "TABLE t",
            publicationName: "Pub it's \"odd\", ✓"
        ) { db, sql, stream in
            try stream.start()
            try sql.execute("INSERT INTO t VALUES (1)")
            #expect(
                try stream.changes()[1]
                    == .insert(.init(relationOID: try relationOID("t", sql), newTuple: .texts(["1"]))))
        }
    }

    /// Proves an idle stream gets keepalives, including ones asking for a reply once half of wal_sender_timeout
    /// passed without one; that answering them keeps the stream alive past the timeout; that a status update
    /// asking for a reply gets a keepalive back; and that a client that stops answering is disconnected (the
    /// server logs the reason but does not send it: the client sees a lost connection).
    @Test func idleStreamGetsKeepalives() async throws {
        try await withLogicalStream(
            setupSQL: "CREATE TABLE t (id int PRIMARY KEY)",
            parameters: [(keyword: "options", value: "-c wal_sender_timeout=2s")]
        ) { db, sql, stream in
            try stream.start()
            let start = try currentLSN(sql)
            let clock = ContinuousClock()
            let started = clock.now
            var answered = 0
            while answered < 3 || started.duration(to: clock.now) < .seconds(3) {
                let requested = try stream.keepalive { $0.isReplyRequested }
                #expect(requested.walEnd >= start)
                #expect(requested.serverTime.unixMicroseconds > 0)
                try stream.replication.sendStatus(
                    written: requested.walEnd, flushed: requested.walEnd, applied: .invalid)
                answered += 1
            }
            try sql.execute("INSERT INTO t VALUES (1)")
            #expect(try stream.changes().count == 3)

            let before = stream.keepalives.count
            try stream.replication.sendStatus(
                written: .invalid, flushed: .invalid, applied: .invalid, isReplyRequested: true)
            _ = try stream.keepalive { _ in true }
            #expect(stream.keepalives.count > before)

            let dropped = #expect(throws: PostgresError.self) {
                while true { _ = try stream.replication.next(timeout: .seconds(10)) }
            }
            #expect(dropped?.isConnectionLost == true)
            #expect(stream.replication.isConnectionLost)
        }
    }

    /// Proves the event-loop contract: `next(timeout: .zero)` never waits, and after the socket polls readable
    /// it hands out what arrived.
    @Test func nonBlockingReadsAfterPoll() async throws {
        try await withLogicalStream(setupSQL: "CREATE TABLE t (id int PRIMARY KEY)") { db, sql, stream in
            try stream.start()
            let clock = ContinuousClock()
            while try stream.replication.next(timeout: .zero) != nil {}
            let idleStart = clock.now
            // Nothing was written: at most a keepalive can be there (the server sends them unprompted).
            switch try stream.replication.next(timeout: .zero) {
            case nil, .keepalive?: break
            case let other?: Issue.record("unexpected \(other)")
            }
            #expect(idleStart.duration(to: clock.now) < .milliseconds(50))
            try sql.execute("INSERT INTO t VALUES (1)")
            var messages: [PgOutputMessage] = []
            let deadline = clock.now.advanced(by: .seconds(30))
            while !messages.contains(where: { if case .commit = $0 { true } else { false } }), clock.now < deadline {
                if let frame = try stream.replication.next(timeout: .zero) {
                    if case .xLogData(let data) = frame { messages.append(try PgOutputDecoder.decode(data.payload)) }
                    continue
                }
                var descriptor = pollfd(fd: stream.replication.socketDescriptor, events: Int16(POLLIN), revents: 0)
                _ = poll(&descriptor, 1, 1000)
            }
            messages.removeAll { $0.isSchema }
            #expect(messages.count == 3)
            #expect(messages[1] == .insert(.init(relationOID: try relationOID("t", sql), newTuple: .texts(["1"]))))
        }
    }

    /// Proves what the XLogData positions of a logical stream are (PostgreSQL 15, pgoutput): each change's
    /// `walStart` is the LSN of its WAL record — increasing across statements, one value shared by the rows of a
    /// multi-insert record (COPY), so a change is identified by (record LSN, ordinal within the record); Begin
    /// carries its first change's LSN, Commit its end LSN; `walEnd` equals `walStart`. (A Relation's position is
    /// not meaningful: seen as 0/0 and as other values.)
    @Test func framePositionsAreRecordLSNs() async throws {
        try await withLogicalStream(setupSQL: "CREATE TABLE t (id int PRIMARY KEY, v text)") { db, sql, stream in
            try stream.start()
            try sql.executeScript("BEGIN")
            try sql.execute("INSERT INTO t VALUES (1, 'a')")
            try sql.execute("INSERT INTO t VALUES (2, 'b')")
            try sql.copyIn(
                table: "t", columns: ["id", "v"], rows: [[.int(3), "c"], [.int(4), "d"], [.int(5), "e"]])
            try sql.execute("UPDATE t SET v = 'x' WHERE id <= 2")
            try sql.executeScript("COMMIT")
            let frames = try stream.transactionFrames()
            #expect(frames.allSatisfy { $0.walEnd == $0.walStart })
            let changes = frames.filter { !$0.message.isSchema }
            try #require(changes.count == 9, "\(frames.map(\.message))")
            guard case .commit(let commit) = changes[8].message else {
                Issue.record("no commit")
                return
            }
            #expect(changes[0].walStart == changes[1].walStart)  // Begin: its first change's record
            let rows = changes[1...7].map(\.walStart)
            #expect(rows[0] < rows[1] && rows[1] < rows[2])  // two INSERTs, then the COPY
            #expect(rows[2] == rows[3] && rows[3] == rows[4])  // one multi-insert record for the COPY's rows
            #expect(rows[4] < rows[5] && rows[5] < rows[6])  // two row updates, two records
            #expect(rows[6] < commit.commitLSN)
            #expect(changes[8].walStart == commit.endLSN)
        }
    }

    /// Proves the `binary` option sends values in each type's binary send format ('b').
    @Test func binaryValues() async throws {
        try await withLogicalStream(setupSQL: "CREATE TABLE t (id int PRIMARY KEY, big bigint, word text)") {
            db, sql, stream in
            try stream.replication.startLogical(
                slot: stream.slot, from: .invalid,
                options: try PgOutputOptions(publications: [stream.publication], isBinary: true).options())
            try sql.execute("INSERT INTO t VALUES (1, -2, 'hé')")
            let transaction = try stream.changes()
            #expect(
                transaction[1]
                    == .insert(
                        .init(
                            relationOID: try relationOID("t", sql),
                            newTuple: PgOutputTuple([
                                .binary([0, 0, 0, 1]), .binary([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE]),
                                .binary(Array("hé".utf8)),
                            ]))))
        }
    }

    /// Proves the server's errors arrive typed with its message and SQLSTATE: an unknown slot at START, a
    /// duplicate slot, a bad option value (quoted, so it stays one value), a bad slot name (refused before
    /// sending), and a walsender terminated mid-stream. A persistent slot survives the errors. Recorded fact
    /// (PostgreSQL 15): any ERROR on a replication connection drops the temporary slots that session created.
    @Test func serverErrorsAreTyped() async throws {
        try await withLogicalStream(setupSQL: "CREATE TABLE t (id int PRIMARY KEY)", isTemporary: false) {
            db, sql, stream in
            let unknown = #expect(throws: PostgresError.self) {
                try stream.replication.startLogical(slot: "starling_no_such_slot", from: .invalid, options: [])
            }
            #expect(unknown?.code == .queryFailed)
            #expect(unknown?.sqlState == "42704")
            #expect(unknown?.message.contains("starling_no_such_slot") == true)
            let duplicate = #expect(throws: PostgresError.self) {
                try stream.replication.createLogicalSlot(name: stream.slot, isTemporary: true)
            }
            #expect(duplicate?.sqlState == "42710")
            let badName = #expect(throws: PostgresError.self) {
                try stream.replication.createLogicalSlot(name: "Bad Name; DROP", isTemporary: true)
            }
            #expect(badName?.code == .invalidIdentifier)
            let badOption = #expect(throws: PostgresError.self) {
                try stream.replication.startLogical(
                    slot: stream.slot, from: .invalid, options: [(name: "proto_version", value: "1', x '2")])
            }
            #expect(badOption?.code == .queryFailed)
            // The whole text reached pgoutput as one value (no syntax error, no second option).
            #expect(badOption?.message == "invalid proto_version")
            #expect(!stream.replication.isStreaming)
            #expect(try sql.replicationSlot(named: stream.slot) != nil)

            let temporary = uniqueName("starling_wal_slot")
            // Creating a slot waits for every transaction running in the cluster: off the cooperative pool. The
            // connection is used by one thread at a time: this test waits for that thread before it goes on.
            nonisolated(unsafe) let replication = stream.replication
            _ = try await offPool { try replication.createLogicalSlot(name: temporary, isTemporary: true) }
            #expect(try sql.replicationSlot(named: temporary)?.isTemporary == true)
            #expect(throws: PostgresError.self) { try stream.replication.dropSlot(name: "starling_no_such_slot") }
            #expect(try sql.replicationSlot(named: temporary) == nil)

            try stream.start()
            try sql.execute("SELECT pg_terminate_backend($1)", [.int32(stream.replication.backendPID)])
            let terminated = #expect(throws: PostgresError.self) {
                while true { _ = try stream.replication.next(timeout: .seconds(30)) }
            }
            #expect(terminated?.sqlState == "57P01")
            #expect(terminated?.message.contains("terminating connection") == true)
            #expect(!stream.replication.isStreaming)
        }
    }

    /// Decodes every row of a large single transaction (many single-row inserts); with
    /// STARLING_WAL_MEASURE_ROWS set, also reports stream and decode-only rates (a measurement, not a limit).
    @Test func largeTransactionDeliversEveryRow() async throws {
        let rowCount = Int(environment("STARLING_WAL_MEASURE_ROWS") ?? "") ?? 20_000
        try await withLogicalStream(setupSQL: "CREATE TABLE t (id bigint PRIMARY KEY, name text, n int)") {
            db, sql, stream in
            try stream.start()
            try sql.execute(
                "INSERT INTO t SELECT g, 'name-' || g, g % 100 FROM generate_series(1, $1) g", [.int(rowCount)])
            let clock = ContinuousClock()
            let started = clock.now
            let clientCPUStart = threadCPUMicroseconds()
            let walsenderCPUStart = processCPUMicroseconds(pid: stream.replication.backendPID)
            var payloads: [[UInt8]] = []
            payloads.reserveCapacity(rowCount + 3)
            var inserts = 0
            var last: PgOutputMessage.Insert?
            while true {
                guard case .xLogData(let data)? = try stream.replication.next(timeout: .seconds(30)) else { continue }
                payloads.append(data.payload)
                let message = try PgOutputDecoder.decode(data.payload)
                if case .insert(let insert) = message {
                    inserts += 1
                    last = insert
                }
                if case .commit = message { break }
            }
            let streamed = started.duration(to: clock.now)
            let clientCPU = threadCPUMicroseconds() - clientCPUStart
            let walsenderCPU = processCPUMicroseconds(pid: stream.replication.backendPID) - walsenderCPUStart
            #expect(inserts == rowCount)
            #expect(last?.newTuple == .texts([String(rowCount), "name-\(rowCount)", String(rowCount % 100)]))

            let decodeStart = clock.now
            let decodeCPUStart = threadCPUMicroseconds()
            var decoded = 0
            for payload in payloads {
                if case .insert = try PgOutputDecoder.decode(payload) { decoded += 1 }
            }
            let decodeTime = decodeStart.duration(to: clock.now)
            let decodeCPU = threadCPUMicroseconds() - decodeCPUStart
            #expect(decoded == rowCount)
            if environment("STARLING_WAL_MEASURE_ROWS") != nil {
                let count = Double(payloads.count)
                print(
                    "wal measure: \(rowCount) rows, \(payloads.count) messages; stream+decode "
                        + "\(rate(payloads.count, streamed)) msg/s, client CPU \(Double(clientCPU) / count) µs/msg, "
                        + "walsender CPU \(Double(walsenderCPU) / count) µs/msg; decode only "
                        + "\(rate(payloads.count, decodeTime)) msg/s, \(Double(decodeCPU) * 1000 / count) ns/msg")
            }
        }
    }
}

// MARK: - Helpers

func relationOID(_ table: String, _ sql: PostgresConnection) throws -> UInt32 {
    UInt32(try sql.query("SELECT $1::regclass::oid AS oid", [.text(table)])[0].int64("oid"))
}

/// The current transaction's 32-bit xid (pgoutput's Begin carries the xid without its epoch).
func currentXID(_ sql: PostgresConnection) throws -> UInt32 {
    UInt32(try sql.query("SELECT pg_current_xact_id()::text::bigint % 4294967296 AS xid")[0].int64("xid"))
}

func serverMicroseconds(_ sql: PostgresConnection) throws -> Int64 {
    try sql.query("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS us")[0].int64("us")
}

func currentLSN(_ sql: PostgresConnection) throws -> LSN {
    try LSN(parsing: sql.query("SELECT pg_current_wal_lsn()::text AS lsn")[0].string("lsn"), what: "lsn")
}

func rate(_ count: Int, _ duration: Duration) -> Int {
    let (seconds, attoseconds) = duration.components
    let total = Double(seconds) + Double(attoseconds) / 1e18
    return total > 0 ? Int(Double(count) / total) : 0
}

func environment(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

/// CPU time of the calling thread (user + system), in microseconds.
func threadCPUMicroseconds() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
}

/// CPU time (utime + stime from /proc/<pid>/stat) of a local process, in microseconds; 0 when unreadable.
/// Clock-tick resolution (10 ms): for measurements over many messages only.
func processCPUMicroseconds(pid: Int32) -> Int64 {
    guard let file = fopen("/proc/\(pid)/stat", "r") else { return 0 }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 4096)
    guard fgets(&buffer, Int32(buffer.count), file) != nil else { return 0 }
    let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 of the whole line.
    guard let close = line.lastIndex(of: ")") else { return 0 }
    let fields = line[line.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Int64(fields[11]), let system = Int64(fields[12]) else { return 0 }
    return (user + system) * 1_000_000 / Int64(sysconf(Int32(_SC_CLK_TCK)))
}
