@testable import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// The one-round-trip apply (AgentStore+OneTripApply.swift): once the catalog is read for a page's tables, an apply
/// under WAL capture goes to the database in one pipeline, and every check the full apply makes first is made on the
/// server, where a failing one undoes the whole transaction and the page is applied the full way.
@Suite("One-trip apply", .serialized, .timeLimit(.minutes(2)))
struct OneTripApplyTests {
    static func entry(_ seq: Int64, _ id: Int64, name: String? = nil) -> LogEntry {
        LogEntry(
            seq: seq, origin: "x", id: "x:\(seq)", tx: "x:\(seq)", table: "public.items", op: .insert,
            key: ["id": .integer(id)], row: ["id": .integer(id), "qty": .integer(seq), "name": .string(name ?? "n\(seq)")],
            hlc: 1000 + seq, kind: .change, rewritten: false)
    }

    /// A region with `items` (a unique name) and `other` synced, and the DDL counting trigger.
    static func region(_ database: TestDatabase) throws -> PostgresConnection {
        let connection = try AgentTestSupport.region(
            database, ddl: ShapeGuardTests.ddl + "CREATE UNIQUE INDEX items_name ON items (name);",
            tables: ShapeGuardTests.tables)
        #expect(try AgentTestSupport.schema().installSchemaCapture(connection: connection))
        return connection
    }

    @Test("a page goes in one trip once the catalog is known; a stale page, DDL and a failing row are refused")
    func refusals() async throws {
        // Proves: the second apply goes in one trip and writes what the full one would (rows, cursor, WAL position,
        // deferred entries); a page applied again is stale; an ALTER the cache has not seen yet is refused on the
        // server (the key after the locks) and the full apply then holds the entry; a row failing in its table's
        // batch is refused too, and the full apply dead-letters that row alone; a table dropped since the catalog was
        // read fails the one trip's lock, and the full apply holds its entry.
        try await TestDatabase.with { database in
            let connection = try Self.region(database)
            defer { connection.close() }
            try connection.execute("DROP EVENT TRIGGER \(AgentSchema.schemaEventTrigger)")
            let store = AgentStore(region: "r")
            var cursor: Int64 = 0
            func apply(_ entries: [LogEntry], pending: Set<TableKey> = []) throws -> ApplySummary {
                let next = entries.map(\.seq).max() ?? cursor
                let summary = try store.apply(
                    entries, after: cursor, next: next, wal: WALApply(pendingKeys: pending, versions: [:]),
                    connection: connection)
                if !summary.isStale { cursor = next }
                return summary
            }
            func stored() throws -> Int64 { try connection.query("SELECT cursor FROM starling.state")[0].int64(0) }

            let first = try apply([Self.entry(1, 1)])
            #expect(first.applied == 1 && !first.inOneTrip, "the first apply reads the catalog")
            let second = try apply([Self.entry(2, 2), Self.entry(3, 2), Self.entry(4, 3)], pending: [
                TableKey(table: "public.items", key: ["id": .integer(3)])
            ])
            #expect(second.inOneTrip && second.applied == 2 && second.skippedPending == 1)
            #expect(second.position != nil)
            #expect(try stored() == 4)
            #expect(try connection.query("SELECT qty FROM items WHERE id = 2")[0].int64(0) == 3, "the newest image")
            #expect(try connection.query("SELECT count(*) FROM starling.deferred_entries")[0].int64(0) == 1)

            let again = try store.apply(
                [Self.entry(5, 5)], after: 2, next: 5, wal: WALApply(pendingKeys: [], versions: [:]),
                connection: connection)
            #expect(again.isStale && !again.inOneTrip && again.refusedOneTrip)
            #expect(try stored() == 4 && connection.query("SELECT count(*) FROM items WHERE id = 5")[0].int64(0) == 0)

            // The cache still holds the old key: the one trip is tried and refused after the locks.
            try connection.execute("ALTER TABLE items ADD COLUMN note text")
            let altered = try apply([Self.entry(6, 6)])
            #expect(!altered.inOneTrip && altered.refusedOneTrip && altered.held == 1 && altered.stoppedTables.keys.sorted() == ["public.items"])
            try connection.execute("ALTER TABLE items DROP COLUMN note")
            #expect(try apply([Self.entry(7, 7)]).resumed == 1)
            // The resuming apply kept no catalog (entries were held when it read) and its shape check is at a newer key
            // than the catalog kept for these tables: the next apply reads the catalog again, and is not refused.
            let reread = try apply([Self.entry(8, 8)])
            #expect(!reread.inOneTrip && !reread.refusedOneTrip)
            #expect(try apply([Self.entry(9, 9)]).inOneTrip)

            // Row 10 takes the name row 1 holds: its batch raises, the one trip is refused, the full apply writes row
            // 11 and dead-letters row 10.
            let clash = try apply([Self.entry(10, 10, name: "n1"), Self.entry(11, 11)])
            #expect(!clash.inOneTrip && clash.refusedOneTrip && clash.applied == 1 && clash.deadLettered == 1)
            #expect(try stored() == 11)
            #expect(try connection.query("SELECT count(*) FROM items WHERE id IN (10, 11)")[0].int64(0) == 1)
            #expect(try apply([Self.entry(12, 12)]).inOneTrip)

            // A table dropped since the catalog was read: its lock fails, and the full apply holds the entry.
            func other(_ seq: Int64) -> LogEntry {
                var entry = Self.entry(seq, seq)
                entry.table = "public.other"
                entry.row = ["id": .integer(seq), "v": .string("v")]
                return entry
            }
            _ = try apply([other(13)])
            #expect(try apply([other(14)]).inOneTrip)
            try connection.execute("DROP TABLE other")
            let dropped = try apply([other(15)])
            #expect(!dropped.inOneTrip && dropped.refusedOneTrip && dropped.held == 1)
            #expect(try dropped.stoppedTables.keys.sorted() == ["public.other"] && stored() == 15)
            #expect(connection.isIdle)
        }
    }

    @Test("under starling_pgoutput a promising one-trip apply lists exactly the keys it writes; otherwise nothing")
    func writtenKeysMessage() async throws {
        // Proves the apply's side of ``WrittenKeys``: with the setting on, a one-trip apply that promises its deferral
        // sends a `starling.written` message naming the newest image of each key it writes (not a deferred key, not an
        // older image of a key twice); one that promises nothing (its marker has no `deferredThrough`) lists nothing,
        // and so does every apply with the setting off. Read back with test_decoding.
        try await TestDatabase.with { database in
            let connection = try Self.region(database)
            defer { connection.close() }
            try connection.execute("DROP EVENT TRIGGER \(AgentSchema.schemaEventTrigger)")
            let slot = "written_\(UInt32.random(in: 0...UInt32.max))"
            _ = try await database.withConnection { connection in
                try connection.query("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", [.text(slot)])
            }
            defer { _ = try? connection.query("SELECT pg_drop_replication_slot($1)", [.text(slot)]) }
            let store = AgentStore(region: "r")
            var cursor: Int64 = 0
            let through = StreamPosition(commitLSN: 0x100, number: 1)
            func apply(_ entries: [LogEntry], pending: Set<TableKey> = [], promises: Bool = true) throws -> [String] {
                let next = entries.map(\.seq).max() ?? cursor
                let summary = try store.apply(
                    entries, after: cursor, next: next,
                    wal: WALApply(pendingKeys: pending, versions: [:], deferredThrough: promises ? through : nil),
                    connection: connection)
                cursor = next
                #expect(summary.inOneTrip || entries.first?.seq == 1)
                // Read until the apply's marker (cursor `next`) shows.
                let messages = try AgentTestSupport.decodedMessages(slot: slot, connection: connection) {
                    $0.contains("prefix: starling,") && $0.contains(#"{"c":\#(next),"#)
                }
                return messages.filter { $0.contains("prefix: \(WrittenKeys.prefix),") }
            }
            #expect(try apply([Self.entry(1, 1)]).isEmpty, "the setting is off")
            store.writtenKeys.set(true)
            let listed = try apply(
                [Self.entry(2, 2), Self.entry(3, 2), Self.entry(4, 3)],
                pending: [TableKey(table: "public.items", key: ["id": .integer(3)])])
            #expect(listed.count == 1 && listed.first?.hasSuffix(#"content:[["public.items",{"id":2}]]"#) == true, "\(listed)")
            #expect(try apply([Self.entry(5, 5)], promises: false).isEmpty, "no promise, no list")
        }
    }

    @Test("a table's upserts go as one statement of their own, parsing images as its apply function does")
    func upsertStatement() async throws {
        // Proves ``TableSQL/upsertRowsSQL()`` in the one trip: used for a page of upserts (its shape read once, then
        // kept), it reads a value under the settings the apply function runs with, not the session's (a timestamptz
        // image without an offset is UTC, as the function reads it: with the agent role's own time zone it would be
        // five hours off); a page with a delete goes through the function; and DDL makes it read the shape again.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: "CREATE TABLE times (id integer PRIMARY KEY, at timestamptz, span interval);",
                tables: ["public.times"])
            defer { connection.close() }
            #expect(try AgentTestSupport.schema().installSchemaCapture(connection: connection))
            try connection.execute("SET TimeZone = 'America/New_York'")
            try connection.execute("SET IntervalStyle = 'sql_standard'")
            let store = AgentStore(region: "r")
            var cursor: Int64 = 0
            func apply(_ seq: Int64, _ id: Int64, row: JSONObject?) throws -> ApplySummary {
                let entry = LogEntry(
                    seq: seq, origin: "x", id: "x:\(seq)", tx: "x:\(seq)", table: "public.times",
                    op: row == nil ? .delete : .insert, key: ["id": .integer(id)], row: row, hlc: 1000 + seq,
                    kind: .change, rewritten: false)
                let summary = try store.apply(
                    [entry], after: cursor, next: seq, wal: WALApply(pendingKeys: [], versions: [:]),
                    connection: connection)
                cursor = seq
                return summary
            }
            func row(_ id: Int64) -> JSONObject {
                ["id": .integer(id), "at": .string("2026-12-07 02:00:00"), "span": .string("-1 2:03:04")]
            }
            func stored(_ id: Int64) throws -> String {
                try connection.query(
                    "SELECT to_char(at AT TIME ZONE 'UTC', 'HH24:MI') || ' ' || extract(epoch FROM span)::bigint::text "
                        + "FROM times WHERE id = $1", [.int64(id)])[0].string(0)
            }
            #expect(try !apply(1, 1, row: row(1)).inOneTrip, "the first apply reads the catalog")
            #expect(try apply(2, 2, row: row(2)).inOneTrip)
            #expect(try apply(3, 3, row: row(3)).inOneTrip)
            #expect(store.catalog.upsertShapeReads == 1)
            for id: Int64 in [1, 2, 3] { #expect(try stored(id) == stored(1) && stored(id).hasPrefix("02:00 ")) }
            #expect(try stored(2) == "02:00 -79016")
            #expect(try apply(4, 2, row: nil).inOneTrip)
            #expect(try connection.query("SELECT count(*) FROM times WHERE id = 2")[0].int64(0) == 0)
            #expect(store.catalog.upsertShapeReads == 1, "a delete goes through the function")
            try connection.execute("COMMENT ON TABLE times IS 'counted DDL'")
            _ = try apply(5, 5, row: row(5))
            #expect(try apply(6, 6, row: row(6)).inOneTrip && stored(6) == stored(1))
            #expect(store.catalog.upsertShapeReads == 2, "DDL moved the key")
            #expect(try connection.query("SHOW search_path")[0].string(0) == "\"$user\", public")
        }
    }

    @Test("a table of scalar columns upserts one array per column, writing what the document writes")
    func upsertArrays() async throws {
        // Proves ``TableSQL/upsertArraysSQL()`` and ``ColumnArrayWriter`` against the document: rows of every type it
        // takes (escapes, NULLs, absent members, NaN and infinities, typmods that round or pad) written once by the
        // full apply (the function, jsonb) and once in one trip (arrays, from the page's JSON text) come out the same;
        // a value its column refuses (varchar(5)) refuses the one trip, and the full apply dead-letters that row
        // alone; a table with a column of another type keeps the document.
        try await TestDatabase.with { database in
            let columns = """
                t text, v varchar(5), c char(3), n numeric(10,2), i8 bigint, i2 smallint, f8 double precision, f4 real,
                b boolean, u uuid, d date, ts timestamp(3), tz timestamptz, by bytea, ip inet, ci cidr,
                at timestamptz NOT NULL DEFAULT clock_timestamp()
                """
            let connection = try AgentTestSupport.region(
                database,
                ddl: "CREATE TABLE kinds (id integer PRIMARY KEY, \(columns)); "
                    + "CREATE TABLE mixed (id integer PRIMARY KEY, t text, tags text[]);",
                tables: ["public.kinds", "public.mixed"])
            defer { connection.close() }
            #expect(try AgentTestSupport.schema().installSchemaCapture(connection: connection))
            let store = AgentStore(region: "r")
            var cursor: Int64 = 0
            func apply(_ rows: [(id: Int64, row: JSONObject)], table: String = "public.kinds") throws -> ApplySummary {
                let entries = rows.enumerated().map { offset, item in
                    LogEntry(
                        seq: cursor + Int64(offset) + 1, origin: "x", id: "x:\(cursor + Int64(offset) + 1)", tx: "x:\(cursor + 1)",
                        table: table, op: .insert, key: ["id": .integer(item.id)], row: item.row,
                        hlc: 1000 + cursor + Int64(offset), kind: .change, rewritten: false)
                }
                // Through the page's bytes, as pulled: the entries keep their images' JSON text.
                var bytes: [UInt8] = []
                JSONSerializer.write(PullPage(entries: entries, next: cursor + Int64(rows.count), head: 0).json, to: &bytes)
                let pulled = try PullPage(bytes: bytes).entries
                #expect(pulled.allSatisfy { $0.rowJSON != nil })
                let next = cursor + Int64(rows.count)
                let summary = try store.apply(
                    pulled, after: cursor, next: next, wal: WALApply(pendingKeys: [], versions: [:]), connection: connection)
                cursor = next
                return summary
            }
            let rows: [JSONObject] = [
                [
                    "t": .string("say \"hi\" \\ there\n\ttab é 😀 {a,b} NULL"), "v": .string("abc"), "c": .string("ab"),
                    "n": .string("1.005"), "i8": .string("9223372036854775807"), "i2": .integer(-32768),
                    "f8": .number("1.5e300"), "f4": .number("3.25"), "b": .bool(true),
                    "u": .string("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), "d": .string("2026-12-07"),
                    "ts": .string("2026-12-07T10:00:00.123456"), "tz": .string("2026-12-07T10:00:00.123456+00:00"),
                    "by": .string("\\x00ff10"), "ip": .string("192.168.1.1/24"), "ci": .string("10.0.0.0/8"),
                    "at": .string("2026-01-01T00:00:00.000000+00:00"),
                ],
                ["t": .string(""), "f8": .string("NaN"), "f4": .string("-Infinity"), "n": .string("-0.5"), "at": .string("2026-01-01T00:00:00.000000+00:00")],
                ["c": .string("abc"), "f8": .number("-1.25e-7"), "b": .bool(false), "tz": .string("infinity"), "at": .string("2026-01-01T00:00:00.000000+00:00")],
            ]
            func keyed(_ base: Int64) -> [(id: Int64, row: JSONObject)] {
                rows.enumerated().map { offset, row in
                    var row = row
                    row["id"] = .integer(base + Int64(offset))
                    return (base + Int64(offset), row)
                }
            }
            let full = try apply(keyed(1))
            #expect(!full.inOneTrip && full.applied == rows.count, "the first apply reads the catalog")
            let arrays = try apply(keyed(101))
            #expect(arrays.inOneTrip && arrays.applied == rows.count && arrays.upsertedByArrays == rows.count)
            #expect(
                try connection.query(
                    "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%unnest($1::pg_catalog.int4[]%'"
                )[0].int64(0) == 1, "the one trip sent arrays")
            let compared = try connection.query(
                "SELECT a.id, (a.t, a.v, a.c, a.n, a.i8, a.i2, a.f8, a.f4, a.b, a.u, a.d, a.ts, a.tz, a.by, a.ip, a.ci, a.at)::text AS a, "
                    + "(b.t, b.v, b.c, b.n, b.i8, b.i2, b.f8, b.f4, b.b, b.u, b.d, b.ts, b.tz, b.by, b.ip, b.ci, b.at)::text AS b "
                    + "FROM kinds a JOIN kinds b ON b.id = a.id + 100 ORDER BY a.id")
            #expect(compared.rowCount == rows.count)
            for row in compared {
                let (a, b) = (try row.string("a"), try row.string("b"))
                #expect(a == b, "\(a) vs \(b)")
            }
            #expect(try connection.query("SELECT t, c, n::text FROM kinds WHERE id = 101")[0].string(0).contains("\"hi\" \\ there\n"))
            #expect(try connection.query("SELECT n::text FROM kinds WHERE id = 101")[0].string(0) == "1.01")

            var long = keyed(201)
            long[1].row["v"] = .string("toolong")
            let refused = try apply(long)
            #expect(!refused.inOneTrip && refused.refusedOneTrip && refused.applied == 2 && refused.deadLettered == 1)
            #expect(try connection.query("SELECT count(*) FROM kinds WHERE id BETWEEN 201 AND 203")[0].int64(0) == 2)

            // `mixed` has an array column: its one trip sends the document.
            _ = try apply([(1, ["id": .integer(1), "t": .string("a"), "tags": .array([.string("x")])])], table: "public.mixed")
            let mixed = try apply([(2, ["id": .integer(2), "t": .string("b"), "tags": .array([.string("y")])])], table: "public.mixed")
            #expect(mixed.inOneTrip && mixed.applied == 1 && mixed.upsertedByArrays == 0)
            #expect(try connection.query("SELECT tags[1] FROM mixed WHERE id = 2")[0].string(0) == "y")
        }
    }

    @Test("the array upsert takes built-in scalar columns only, and casts to their base types")
    func upsertArraysEligibility() throws {
        func shape(_ columns: [TableShape.Column]) -> TableShape {
            TableShape(name: "public.t", columns: [TableShape.Column(name: "id", type: "integer", valueType: "int4")] + columns, key: ["id"])
        }
        let scalar = TableShape.Column(name: "n", type: "numeric(10,2)", valueType: "numeric")
        let sql = try #require(try TableSQL(shape: shape([scalar])).upsertArraysSQL())
        #expect(sql.columns == ["id", "n"])
        #expect(sql.sql.contains("unnest($1::pg_catalog.int4[], $2::pg_catalog.numeric[]) AS r(\"id\", \"n\")"))
        #expect(sql.sql.contains("ORDER BY r.\"id\""))
        let generated = TableShape.Column(name: "g", type: "jsonb", isGenerated: true, valueType: "jsonb")
        #expect(try TableSQL(shape: shape([scalar, generated])).upsertArraysSQL()?.columns == ["id", "n"], "generated: not written")
        let refused: [TableShape.Column] = [
            TableShape.Column(name: "j", type: "jsonb", valueType: "jsonb"),
            TableShape.Column(name: "a", type: "integer[]", valueType: "int4", isArray: true),
            TableShape.Column(name: "e", type: "mood", valueType: "mood"),
            TableShape.Column(name: "dom", type: "positive", valueType: "int4"),
            TableShape.Column(name: "k", type: "text", valueType: "text", defaultSQL: "'x'::text"),
            TableShape.Column(name: "s", type: "interval", valueType: "interval"),
        ]
        for column in refused { #expect(try TableSQL(shape: shape([scalar, column])).upsertArraysSQL() == nil, "\(column.name)") }
        #expect(TableSQL.withoutModifiers("timestamp(3) with time zone") == "timestamp with time zone")
        #expect(TableSQL.withoutModifiers("character varying(20)") == "character varying")
    }

    @Test("a one-trip apply behind a DDL lock gives up after the apply's lock wait; its settings end with it")
    func lockWait() async throws {
        // Proves the one trip's settings (``AgentStore/oneTripSettings``): its `LOCK TABLE`, with no statements of
        // its own around it now, still waits at most ``TableSQL/applyLockTimeout`` behind an application holding the
        // table (55P03, nothing written, the page is retried rather than applied the full way), and the lock wait and
        // the relaxed commit end with the transaction.
        try await TestDatabase.with { database in
            let connection = try Self.region(database)
            defer { connection.close() }
            let store = AgentStore(region: "r")
            let wal = WALApply(pendingKeys: [], versions: [:])
            _ = try store.apply([Self.entry(1, 1)], after: 0, next: 1, wal: wal, connection: connection)
            #expect(try store.apply([Self.entry(2, 2)], after: 1, next: 2, wal: wal, connection: connection).inOneTrip)
            let app = try database.connect()
            defer { app.close() }
            try app.execute("BEGIN")
            try app.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
            let started = ContinuousClock.now
            #expect {
                _ = try store.apply([Self.entry(3, 3)], after: 2, next: 3, wal: wal, connection: connection)
            } throws: { error in
                (error as? PostgresError)?.sqlState == "55P03"
            }
            let waited = ContinuousClock.now - started
            #expect(waited >= .seconds(1.5) && waited < .seconds(30), "\(waited)")
            try app.execute("ROLLBACK")
            #expect(try connection.query("SELECT cursor FROM starling.state")[0].int64(0) == 2)
            #expect(try connection.query("SHOW lock_timeout")[0].string(0) == "0")
            #expect(try connection.query("SHOW synchronous_commit")[0].string(0) == "on")
            // The catalog is kept 5 s (``CatalogCache/maxAge``) and the wait above took 2: on a loaded machine a
            // one-entry page reads it again first (see largePageCalls).
            _ = try store.apply([Self.entry(3, 3)], after: 2, next: 3, wal: wal, connection: connection)
            #expect(try store.apply([Self.entry(4, 4)], after: 3, next: 4, wal: wal, connection: connection).inOneTrip)
        }
    }

    @Test("integer keys order a large batch's calls; other keys keep one call")
    func callOrder() throws {
        // Proves: a single-column integer key sorts numerically (negative, beyond 32 bits); a text or composite key
        // gives no order; a batch above walBatchRows goes in calls of at most that many, deletes first, each in key
        // order, newest image per key.
        let keys: [JSONObject] = [["id": .integer(10)], ["id": .integer(-3)], ["id": .integer(Int64(1) << 40)], ["id": .integer(2)]]
        #expect(AgentStore.integerKeyOrder(keys) == [1, 3, 0, 2])
        #expect(AgentStore.integerKeyOrder([["id": .string("a")]]) == nil)
        #expect(AgentStore.integerKeyOrder([["a": .integer(1), "b": .integer(2)]]) == nil)

        let count = AgentStore.walBatchRows * 2 + 10
        var images = (0..<count).map { index in
            AgentStore.Image(
                table: "public.items", key: ["id": .integer(count - index)],
                row: index % 7 == 0 ? nil : ["id": .integer(count - index), "qty": .integer(Int64(index))], seq: Int64(index + 1),
                origin: "x")
        }
        images.append(AgentStore.Image(table: "public.items", key: ["id": .integer(5)], row: ["id": .integer(5), "qty": .integer(-1)], seq: Int64(count + 1), origin: "x"))
        let batch = try AgentStore.walBatch(images, indices: Array(images.indices), table: "public.items")
        #expect(batch.newest.count == count && batch.newest.last == count, "the newest image of key 5 replaces its first")
        var (deleted, upserted): ([Int64], [JSONValue]) = ([], [])
        for call in batch.calls {
            func members(_ value: PostgresValue) throws -> [JSONValue] {
                guard case .text(let text) = value else { return [] }
                return try JSONValue(parsing: text).arrayValue ?? []
            }
            let documents = call.documents(images)
            let (upserts, deletes) = (try members(documents[0]), try members(documents[1]))
            #expect(upserts.count + deletes.count <= AgentStore.walBatchRows && (upserts.isEmpty || deletes.isEmpty))
            #expect(deletes.isEmpty || upserted.isEmpty, "deletes come first")
            deleted += deletes.compactMap { $0["id"]?.int64Value }
            upserted += upserts
        }
        let upsertedIDs = upserted.compactMap { $0["id"]?.int64Value }
        #expect(deleted == deleted.sorted() && deleted.count == images.filter { $0.row == nil }.count, "deletes in key order")
        #expect(upsertedIDs == upsertedIDs.sorted() && upsertedIDs.count == images.filter { $0.row != nil }.count - 1)
        #expect(upserted.first { $0["id"]?.int64Value == 5 }?["qty"] == .integer(-1), "key 5's newest image")
        #expect(AgentStore.integerKeyOrder([["id": .string("10")], ["id": .string("9")]]) == nil, "digits may be text")
        let single = try AgentStore.walBatch(Array(images.prefix(5)), indices: Array(0..<5), table: "public.items")
        #expect(single.calls.count == 1)
    }

    @Test("a large page in several calls: a failing row undoes them all and only it is dead-lettered")
    func largePageCalls() async throws {
        // Proves: a page larger than walBatchRows is written whole in its calls; when its last call raises, the full
        // apply's savepoint undoes the earlier calls and the entries are applied one by one in seq order, so the
        // entry dead-lettered is the one that clashes in seq order.
        try await TestDatabase.with { database in
            let connection = try Self.region(database)
            defer { connection.close() }
            let store = AgentStore(region: "r")
            let count = Int64(AgentStore.walBatchRows * 2 + 500)
            let first = (1...count).map { Self.entry($0, count + 1 - $0) }
            let applied = try store.apply(
                first, after: 0, next: count, wal: WALApply(pendingKeys: [], versions: [:]), connection: connection)
            #expect(applied.applied == Int(count) && applied.deadLettered == 0)
            #expect(try connection.query("SELECT count(*) FROM items")[0].int64(0) == count)
            // Again with new names, but key `count` (in the last call by key order) takes "m1", which key 1 takes in
            // the first: that call raises, the one trip is refused, the full apply's calls are undone by its
            // savepoint, and the entries are applied one by one in seq order, where key 1 comes last and clashes
            // (without the savepoint the first call's "m1" stays, and key `count` would be the one refused).
            let second = (1...count).map { seq -> LogEntry in
                let id = count + 1 - seq
                return Self.entry(count + seq, id, name: id == count ? "m1" : "m\(id)")
            }
            let summary = try store.apply(
                second, after: count, next: 2 * count, wal: WALApply(pendingKeys: [], versions: [:]), connection: connection)
            #expect(summary.refusedOneTrip && summary.applied == Int(count) - 1 && summary.deadLettered == 1)
            #expect(try connection.query("SELECT count(*) FROM items WHERE name LIKE 'm%'")[0].int64(0) == count - 1)
            #expect(try connection.query("SELECT seq FROM starling.dead_letters")[0].int64(0) == 2 * count)
            // A large page in one trip: its calls go in the one pipeline. The catalog is kept for
            // ``CatalogCache/maxAge`` (5 s): the entry-by-entry apply above can take longer on a loaded machine (a CI
            // run took 36 s for this test), so a one-entry page reads it again first (or goes in one trip itself).
            let refresh = [Self.entry(2 * count + 1, count + 1, name: "fresh")]
            _ = try store.apply(
                refresh, after: 2 * count, next: 2 * count + 1, wal: WALApply(pendingKeys: [], versions: [:]),
                connection: connection)
            let third = (2...count + 1).map { Self.entry(2 * count + $0, $0 - 1, name: "o\($0 - 1)") }
            let inOneTrip = try store.apply(
                third, after: 2 * count + 1, next: 3 * count + 1, wal: WALApply(pendingKeys: [], versions: [:]),
                connection: connection)
            #expect(inOneTrip.inOneTrip && inOneTrip.applied == Int(count))
            #expect(inOneTrip.upsertedByArrays == Int(count), "each call's rows as arrays")
            #expect(try connection.query("SELECT count(*) FROM items WHERE name LIKE 'o%'")[0].int64(0) == count)
            #expect(connection.isIdle)
        }
    }

    @Test("calls that a table's foreign key to itself fails go again in one call")
    func selfReference() async throws {
        // Proves: deleting a tree whose parents have the lower keys fails in calls of walBatchRows (the first call
        // deletes parents whose children are still there: the foreign key is checked at the end of each statement),
        // and succeeds as the one statement the origin ran: no dead letter, the tree is gone.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: "CREATE TABLE tree (id integer PRIMARY KEY, parent integer REFERENCES tree (id))",
                tables: ["public.tree"])
            defer { connection.close() }
            let half = Int64(AgentStore.walBatchRows)
            try connection.execute(
                "INSERT INTO tree SELECT g, CASE WHEN g > $1 THEN g - $1 END FROM generate_series(1, 2 * $1) g",
                [.int64(half)])
            let deletes = (1...(2 * half)).map { id in
                LogEntry(
                    seq: id, origin: "x", id: "x:\(id)", tx: "x:1", table: "public.tree", op: .delete,
                    key: ["id": .integer(id)], row: nil, hlc: 1000 + id, kind: .change, rewritten: false)
            }
            let summary = try AgentStore(region: "r").apply(
                deletes, after: 0, next: 2 * half, wal: WALApply(pendingKeys: [], versions: [:]), connection: connection)
            #expect(summary.applied == Int(2 * half) && summary.deadLettered == 0 && summary.batchFallbacks == 0)
            #expect(try connection.query("SELECT count(*) FROM tree")[0].int64(0) == 0)
        }
    }

    @Test("verdicts with nothing to write go in one trip; deferred entries to release send them the full way")
    func verdicts() async throws {
        // Proves: under WAL capture (no version rows) accepted verdicts are handled in one round trip; when a decided
        // key has a deferred entry, the one trip is refused and the full way applies the entry.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: DeferredEntriesTests.items, tables: ["public.items"])
            defer { connection.close() }
            let store = AgentStore(region: "eu")
            let wal = WALVerdicts(handledThrough: nil, overwritten: [], stillPending: [])
            try connection.execute("INSERT INTO items VALUES (1, 1, 'local'), (2, 2, 'local')")
            let changes = try store.prepare(try AgentTestSupport.outbox(connection), connection: connection)
            #expect(changes.count == 2)
            // Under WAL capture the changes come from the decoder: no outbox row holds their keys.
            try connection.execute("DELETE FROM starling.outbox")
            let first = try store.handleVerdicts(
                [Verdict(id: changes[1].id, outcome: .accepted(seq: 4))], for: [changes[1]], wal: wal,
                connection: connection)
            #expect(first.inOneTrip && first.accepted == 1 && first.versions.count == 1)
            let deferred = try store.apply(
                [DeferredEntriesTests.entry(6, key: 1, qty: 66)], after: 0, next: 6,
                wal: WALApply(pendingKeys: [TableKey(table: "public.items", key: ["id": .integer(1)])], versions: [:]),
                connection: connection)
            #expect(deferred.skippedPending == 1)
            let second = try store.handleVerdicts(
                [Verdict(id: changes[0].id, outcome: .accepted(seq: 5))], for: [changes[0]], wal: wal,
                connection: connection)
            #expect(!second.inOneTrip && second.accepted == 1 && second.deferredApplied == 1)
            #expect(try connection.query("SELECT qty FROM items WHERE id = 1")[0].int64("qty") == 66)
            #expect(try connection.query("SELECT count(*) FROM starling.deferred_entries")[0].int64(0) == 0)
            #expect(connection.isIdle)
        }
    }
}
