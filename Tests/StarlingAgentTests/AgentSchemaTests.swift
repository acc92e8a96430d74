import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

@Suite("Agent schema install and uninstall")
struct AgentSchemaTests {
    @Test("every file of Migrations/agent is embedded in the binary, in order")
    func everyMigrationFileIsEmbeddedInOrder() throws {
        // Proves AgentMigrations holds each Migrations/agent/*.sql in version order: a file added to the folder
        // but not listed in Package.swift and AgentMigrations fails here instead of never being applied.
        let directory = AgentTestSupport.repositoryRoot + "/Migrations/agent"
        let files = try PostgresMigrator.loadMigrations(directory: directory)
        #expect(!files.isEmpty)
        #expect(files.map(\.label) == AgentMigrations.all.map(\.label))
        #expect(files == AgentMigrations.all)
        #expect(AgentSchema().migrations == AgentMigrations.all)
    }

    @Test("installing twice is a no-op and captures once per write")
    func installIsIdempotent() async throws {
        // Proves: a second install neither fails nor doubles triggers (one outbox row per write), and it
        // removes the key-lock trigger of earlier versions.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: "CREATE TABLE items (id bigint PRIMARY KEY, name text)", tables: ["public.items"])
            try connection.executeScript(
                """
                CREATE FUNCTION public.old_lock() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
                CREATE TRIGGER starling_lock BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION public.old_lock();
                """)
            try AgentTestSupport.install(tables: ["public.items"], connection: connection)
            try connection.execute("INSERT INTO items VALUES (1, 'a')")
            let rows = try AgentTestSupport.outbox(connection)
            #expect(rows.count == 1)
            // The capture trigger and the TRUNCATE guard; the old lock trigger is gone.
            let triggers = try connection.query(
                "SELECT string_agg(tgname, ',' ORDER BY tgname) AS names FROM pg_trigger "
                    + "WHERE tgrelid = 'items'::regclass AND NOT tgisinternal")
            #expect(try triggers[0].string("names") == "starling_capture,starling_no_truncate")
        }
    }

    @Test("uninstall drops triggers and schema and keeps user rows")
    func uninstallKeepsUserData() async throws {
        // Proves: after uninstall the user's rows are intact, writes are no longer captured, no starling schema.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: "CREATE TABLE items (id bigint PRIMARY KEY, name text)", tables: ["public.items"])
            try connection.execute("INSERT INTO items VALUES (1, 'a'), (2, 'b')")
            let before = try AgentTestSupport.fingerprint("items", orderBy: "id", connection)
            try AgentTestSupport.schema().uninstall(connection: connection)
            #expect(try AgentTestSupport.fingerprint("items", orderBy: "id", connection) == before)
            try connection.execute("INSERT INTO items VALUES (3, 'c')")
            let schema = try connection.query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'starling'")
            #expect(try schema[0].int64("n") == 0)
            let triggers = try connection.query(
                "SELECT count(*) AS n FROM pg_trigger WHERE tgrelid = 'items'::regclass AND NOT tgisinternal")
            #expect(try triggers[0].int64("n") == 0)
            // Uninstalling again is harmless.
            try AgentTestSupport.schema().uninstall(connection: connection)
        }
    }

    @Test("a table without a primary key is refused by name")
    func missingPrimaryKey() async throws {
        // Proves: the shape loader names the table when it cannot be synced.
        try await TestDatabase.with { database in
            let connection = try database.connect()
            try connection.executeScript("CREATE TABLE loose (id bigint)")
            #expect(throws: AgentError.self) { try TableShape.load(table: "public.loose", connection: connection) }
            #expect(throws: AgentError.self) { try TableShape.load(table: "public.missing", connection: connection) }
        }
    }
}
