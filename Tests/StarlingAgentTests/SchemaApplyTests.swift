import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// A region applying schema changes from the log, against a real database (README "Schema changes"): renamed
/// columns read pulled images right whatever the order of renames, a stopped table's change is tried again and
/// resumes it, and the event trigger does not get in the way of roles that alter their own tables.
@Suite(.timeLimit(.minutes(2)))
struct SchemaApplyTests {
    static let ddl = "CREATE TABLE items (id integer PRIMARY KEY, label text);"
    static let tables = ["public.items"]
    static let how = AgentStore.SchemaApply(captureTriggers: true, announce: false)

    /// The log entry of `actions` on `shape`, at `seq`, from the hub.
    static func schemaEntry(_ seq: Int64, _ actions: [SchemaChange.Action], on shape: TableShape, version: Int64) throws
        -> (LogEntry, TableShape)
    {
        let change = SchemaChange(table: "public.items", actions: actions, statement: "test")
        let next = try change.applied(to: shape)
        let entry = LogEntry(
            seq: seq, origin: LogEntry.hubOrigin, id: "hub-schema:\(seq)", tx: "hub-schema:\(seq)", table: "public.items",
            op: .update, key: [:], row: SchemaEntry(change: change, shape: next, version: version).row, hlc: seq,
            kind: .schema, rewritten: true)
        return (entry, next)
    }

    static let addNote: [SchemaChange.Action] = [.addColumn(name: "note", type: "text", isNotNull: false, defaultSQL: nil)]
    static let renameLabel: [SchemaChange.Action] = [.renameColumn(from: "label", to: "title")]

    /// A rolling migration run in a region ahead of the log: the region ran `ADD COLUMN note` and then
    /// `RENAME label TO title` by hand; the log has them at seq 10 and 20 (made first in another region). Returns the
    /// region's connection, the two log entries, the table's shape after both, and the rename as the region captured it.
    static func migrationAheadOfTheLog(_ database: TestDatabase) throws
        -> (connection: PostgresConnection, note: LogEntry, rename: LogEntry, renamed: TableShape, change: SchemaChange)
    {
        let connection = try AgentTestSupport.region(database, ddl: Self.ddl, tables: Self.tables)
        let shape = try TableShape.load(table: "public.items", connection: connection)
        let (note, withNote) = try Self.schemaEntry(10, addNote, on: shape, version: 2)
        let (rename, renamed) = try Self.schemaEntry(20, renameLabel, on: withNote, version: 3)
        try connection.execute("ALTER TABLE items ADD COLUMN note text")
        try connection.execute("ALTER TABLE items RENAME COLUMN label TO title")
        let change = SchemaChange(table: "public.items", actions: renameLabel, statement: "test")
        return (connection, note, rename, renamed, change)
    }

    static func rowEntry(_ seq: Int64, _ row: JSONObject) -> LogEntry {
        LogEntry(
            seq: seq, origin: "r9", id: "r9:\(seq)", tx: "r9:\(seq)", table: "public.items", op: .insert,
            key: ["id": row["id"] ?? .null], row: row, hlc: seq, kind: .change, rewritten: false)
    }

    // Proves a column renamed and renamed back reads images under its name again (a map of old names that kept
    // `label → label` dropped the member: the column was written NULL), and an image written between the two
    // renames, under the middle name, lands in the column.
    @Test func renamesThereAndBack() async throws {
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.ddl, tables: Self.tables)
            let store = AgentStore(region: "r1")
            let shape = try TableShape.load(table: "public.items", connection: connection)
            let (first, middle) = try Self.schemaEntry(1, [.renameColumn(from: "label", to: "title")], on: shape, version: 2)
            let (second, _) = try Self.schemaEntry(2, [.renameColumn(from: "title", to: "label")], on: middle, version: 3)
            #expect(try store.applySchema(first, after: 0, how: Self.how, connection: connection) != .stale)
            #expect(try store.applySchema(second, after: 1, how: Self.how, connection: connection) != .stale)
            _ = try store.apply(
                [Self.rowEntry(3, ["id": 1, "label": "kept"]), Self.rowEntry(4, ["id": 2, "title": "moved"])],
                after: 2, next: 4, connection: connection)
            let labels = try connection.query("SELECT label FROM items ORDER BY id").map { try $0.optionalString(0) }
            #expect(labels == ["kept", "moved"])
        }
    }

    // Proves a rolling migration where this region ran the statements by hand ahead of the log: once the hub answered
    // its own capture of the last one with that version's seq, the log's entries up to it need nothing here (without
    // the record the first found a third shape and stopped the table), and a rename among them still maps images
    // written under the old name.
    @Test func statementsRunHereAheadOfTheLog() async throws {
        try await TestDatabase.with { database in
            let (connection, note, rename, renamed, change) = try Self.migrationAheadOfTheLog(database)
            let store = AgentStore(region: "r3")
            #expect(try store.acceptedSchema(change, seq: 20, recordsRenames: false, connection: connection) != nil)
            for (entry, after) in [(note, Int64(0)), (rename, Int64(10))] {
                let outcome = try store.applySchema(entry, after: after, how: Self.how, connection: connection)
                #expect(outcome == .applied(try TableShape.load(table: "public.items", connection: connection), executed: false))
            }
            #expect(TableShape.sameColumns(try TableShape.load(table: "public.items", connection: connection).columns, renamed.columns))
            _ = try store.apply([Self.rowEntry(21, ["id": 1, "label": "old name"])], after: 20, next: 21, connection: connection)
            #expect(try connection.query("SELECT title FROM items WHERE id = 1")[0].optionalString(0) == "old name")
        }
    }

    // Proves a log entry that finds a third shape while a change of the table made here awaits the hub's answer (the
    // region ran this statement and the next by hand, a rolling migration) stops the stream without a dead letter (one
    // was recorded and stayed an open conflict at the hub), and needs nothing once the answer records the change.
    @Test func anEntryWaitsForTheAnswerToAChangeMadeHere() async throws {
        try await TestDatabase.with { database in
            let (connection, note, _, renamed, change) = try Self.migrationAheadOfTheLog(database)
            let store = AgentStore(region: "r3")
            var waiting = Self.how
            waiting.awaitingAnswer = ["public.items"]
            guard case .stopped(let reason) = try store.applySchema(note, after: 0, how: waiting, connection: connection)
            else {
                Issue.record("a table with a third shape applied the change")
                return
            }
            #expect(reason.contains("waits for the hub's answer"))
            #expect(try connection.query("SELECT count(*) FROM starling.dead_letters")[0].int64(0) == 0)
            #expect(try store.acceptedSchema(change, seq: 20, recordsRenames: false, connection: connection) != nil)
            let resumed = try store.applyHeldEntries(how: Self.how, connection: connection)
            #expect(resumed.stoppedTables.isEmpty, "\(resumed.stoppedTables)")
            #expect(try connection.query("SELECT count(*) FROM starling.dead_letters")[0].int64(0) == 0)
            #expect(try connection.query("SELECT count(*) FROM starling.held_entries")[0].int64(0) == 0)
            #expect(TableShape.sameColumns(try TableShape.load(table: "public.items", connection: connection).columns, renamed.columns))
        }
    }

    // Proves an entry that waited for an answer and still finds a third shape once nothing is awaited becomes a dead
    // letter then, once: tried again, it records no second one.
    @Test func aWaitingEntryBecomesADeadLetterOnceNothingIsAwaited() async throws {
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.ddl, tables: Self.tables)
            let store = AgentStore(region: "r3")
            let shape = try TableShape.load(table: "public.items", connection: connection)
            let (note, _) = try Self.schemaEntry(10, Self.addNote, on: shape, version: 2)
            try connection.execute("ALTER TABLE items ADD COLUMN extra integer")
            var waiting = Self.how
            waiting.awaitingAnswer = ["public.items"]
            #expect(try store.applySchema(note, after: 0, how: waiting, connection: connection) != .stale)
            #expect(try connection.query("SELECT count(*) FROM starling.dead_letters")[0].int64(0) == 0)
            for _ in 0..<2 {
                let again = try store.applyHeldEntries(how: Self.how, connection: connection)
                #expect(again.stoppedTables["public.items"] != nil)
                let stopped = try connection.query("SELECT stopped FROM starling.synced_tables")[0].optionalString(0)
                #expect(stopped?.contains("could not be applied") == true, "\(stopped ?? "not stopped")")
                #expect(try connection.query("SELECT count(*) FROM starling.dead_letters")[0].int64(0) == 1)
            }
        }
    }

    // Proves a table stopped by a schema change it could not apply, whose first held entry is a row (it was
    // drifted before the change arrived), is tried again once the operator made it possible, and resumes.
    @Test func aStoppedTableResumesWhenItsChangeBecomesPossible() async throws {
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.ddl, tables: Self.tables)
            try connection.execute("UPDATE starling.synced_tables SET bootstrapped_at = now()")
            let store = AgentStore(region: "r1")
            let shape = try TableShape.load(table: "public.items", connection: connection)
            try connection.execute("ALTER TABLE items ADD COLUMN extra integer")  // drift: entries are held
            _ = try store.apply([Self.rowEntry(1, ["id": 1, "label": "one"])], after: 0, next: 1, connection: connection)
            let (change, _) = try Self.schemaEntry(
                2, [.addColumn(name: "note", type: "text", isNotNull: false, defaultSQL: nil)], on: shape, version: 2)
            guard case .stopped(let reason) = try store.applySchema(change, after: 1, how: Self.how, connection: connection)
            else {
                Issue.record("a table with a third shape applied the change")
                return
            }
            #expect(reason.contains("could not be applied"))
            try connection.execute("ALTER TABLE items DROP COLUMN extra")  // the operator's fix
            let resumed = try store.applyHeldEntries(how: Self.how, connection: connection)
            #expect(resumed.stoppedTables.isEmpty, "\(resumed.stoppedTables)")
            let columns = try connection.query(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 "
                    + "AND NOT attisdropped ORDER BY attnum"
            ).map { try $0.string(0) }
            #expect(columns == ["id", "label", "note"])
            #expect(try connection.query("SELECT count(*) FROM items")[0].int64(0) == 1)
            #expect(try connection.query("SELECT count(*) FROM starling.held_entries")[0].int64(0) == 0)
        }
    }

    // Proves the event trigger runs as its owner: a role that owns an unsynced table and has no right on the
    // starling schema alters it (the trigger reading starling.synced_tables as that role refused every ALTER).
    @Test func applicationRolesKeepAlteringTheirTables() async throws {
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: Self.ddl + "CREATE TABLE own (id integer PRIMARY KEY);", tables: Self.tables)
            #expect(try AgentTestSupport.schema().installSchemaCapture(connection: connection))
            let role = "starling_test_app_\(UInt32.random(in: 0...UInt32.max))"
            try connection.execute("CREATE ROLE \(role) NOLOGIN")
            defer {
                _ = try? connection.execute("RESET ROLE")
                _ = try? connection.execute("DROP OWNED BY \(role)")
                _ = try? connection.execute("DROP ROLE \(role)")
            }
            try connection.execute("ALTER TABLE own OWNER TO \(role)")
            try connection.execute("SET ROLE \(role)")
            try connection.execute("ALTER TABLE own ADD COLUMN note text")
            try connection.execute("RESET ROLE")
            #expect(try connection.query("SELECT count(*) FROM pg_attribute WHERE attrelid = 'own'::regclass AND attname = 'note'")[0].int64(0) == 1)
        }
    }
}
