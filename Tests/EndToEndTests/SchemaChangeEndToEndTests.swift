import Foundation
import StarlingPostgres
import StarlingTestSupport
import Synchronization
import Testing

/// Schema changes as log entries (README "Schema changes"), with hub and agents as real processes and writes going
/// on in every region throughout: statements given to the hub, and the same statement run by hand in each region
/// (a rolling migration). No process restarts; afterwards every region holds exactly the rows written, in the
/// shape the statements gave, equal to the hub's heads, with no conflict and no dead letter.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct SchemaChangeEndToEndTests {
    static let ddl = "CREATE TABLE items (id integer PRIMARY KEY, label text);"
    static let tables = [(name: "public.items", policy: "lww")]

    /// The last value each region's writer wrote per column of each of its keys (writers own disjoint keys, so
    /// the last write wins everywhere without a conflict).
    final class Written: Sendable {
        let rows = Mutex<[Int: [String: String]]>([:])
        /// Set when the writers stop.
        let stop = Atomic(false)
    }

    /// Writes rows of `region` (keys `base + 0..<40`) until `stop`: each write sets the name column (`label`, or
    /// `title` once renamed), and `note` / `qty` while the region's table has them; a write that meets a schema
    /// change mid-way fails and is not counted.
    private func write(
        _ deployment: Deployment, _ region: String, base: Int, into written: Written
    ) async {
        var count = 0
        // Past the stop, a writer goes on (briefly) until each of its 40 keys was written once: on a loaded machine
        // the schema steps can end before a writer went round (seen in CI: 38 of 40).
        while !written.stop.load(ordering: .relaxed) || (count < 400 && !wroteAll(base: base, written)) {
            count += 1
            let n = count
            let id = base + n % 40
            do {
                let values: [String: String] = try await deployment.sql(region) { connection in
                    let columns = Set(
                        try connection.query(
                            "SELECT attname::text FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 "
                                + "AND NOT attisdropped"
                        ).map { try $0.string(0) })
                    var values = [columns.contains("title") ? "title" : "label": "\(region)-\(n)"]
                    if columns.contains("note") { values["note"] = "note-\(n)" }
                    if columns.contains("qty") { values["qty"] = "\(n)" }
                    let names = values.keys.sorted()
                    let quoted = names.map { "\"\($0)\"" }
                    let placeholders = names.indices.map { "$\($0 + 2)" + (names[$0] == "qty" ? "::integer" : "") }
                    try connection.execute(
                        "INSERT INTO items (id, \(quoted.joined(separator: ", "))) VALUES ($1, "
                            + placeholders.joined(separator: ", ") + ") ON CONFLICT (id) DO UPDATE SET "
                            + quoted.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", "),
                        [.int(id)] + names.map { .text(values[$0] ?? "") })
                    return values
                }
                written.rows.withLock { rows in rows[id, default: [:]].merge(values) { _, new in new } }
            } catch {
                // A write racing a schema change of its region (a column gone, a lock timeout): not counted.
            }
            try? await Task.sleep(for: .milliseconds(4))
        }
    }

    /// Whether the writer from `base` wrote each of its 40 keys.
    private func wroteAll(base: Int, _ written: Written) -> Bool {
        written.rows.withLock { rows in (0..<40).allSatisfy { rows[base + $0] != nil } }
    }

    /// Every region's rows as `[id: [column: text]]`.
    private func rows(_ deployment: Deployment, _ region: String) async throws -> [Int: [String: String?]] {
        try await deployment.sql(region) { connection in
            var result: [Int: [String: String?]] = [:]
            for row in try connection.query("SELECT id, to_jsonb(items)::text FROM items") {
                let object = try JSONSerialization.jsonObject(with: Data(try row.string(1).utf8)) as? [String: Any] ?? [:]
                var values: [String: String?] = [:]
                for (name, value) in object where name != "id" {
                    values[name] = value is NSNull ? String?.none : "\(value)"
                }
                result[Int(try row.int64(0))] = values
            }
            return result
        }
    }

    private func columns(_ deployment: Deployment, _ region: String) async throws -> [String] {
        try await deployment.sql(region) { connection in
            try connection.query(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 "
                    + "AND NOT attisdropped ORDER BY attnum"
            ).map { try $0.string(0) }
        }
    }

    private func schemaChange(_ deployment: Deployment, _ statement: String) async throws -> [String: Any] {
        let body = try JSONSerialization.data(withJSONObject: ["table": "public.items", "statement": statement])
        let (status, json) = try await deployment.admin("POST", "/v1/schema", body: Array(body))
        guard status == 200, let answer = json as? [String: Any] else {
            throw E2EError("POST /v1/schema \(statement) answered \(status): \(String(describing: json))")
        }
        return answer
    }

    /// Runs the writers while `body` runs, then checks convergence and that every region holds what was written.
    private func underLoad(
        _ deployment: Deployment, finalColumns: [String], _ body: () async throws -> Void
    ) async throws {
        let written = Written()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, region) in deployment.regions.enumerated() {
                group.addTask { await write(deployment, region, base: 100 * (index + 1), into: written) }
            }
            do {
                try await body()
                try await Task.sleep(for: .milliseconds(500))
            } catch {
                written.stop.store(true, ordering: .relaxed)
                throw error
            }
            written.stop.store(true, ordering: .relaxed)
            try await group.waitForAll()
        }
        try await deployment.waitForConvergence()
        let expected = written.rows.withLock { $0 }
        #expect(expected.count == 120, "every writer wrote its 40 keys")
        for region in deployment.regions {
            #expect(try await columns(deployment, region) == finalColumns, "\(region)")
            let found = try await rows(deployment, region)
            #expect(found.count == expected.count, "\(region)")
            for (id, values) in expected {
                for column in finalColumns where column != "id" {
                    // A key last written before the rename holds its value under the old name.
                    let value = column == "title" ? values["title"] ?? values["label"] : values[column]
                    let want: String? = value ?? (column == "qty" ? "0" : nil)
                    #expect(found[id]?[column] == .some(want), "\(region) id \(id) \(column)")
                }
            }
        }
        #expect(try await deployment.conflicts().isEmpty)
        for region in deployment.regions {
            let letters = try await deployment.sql(region) {
                try $0.query("SELECT count(*) FROM starling.dead_letters")[0].int64(0)
            }
            #expect(letters == 0, "\(region) dead letters")
        }
    }

    // Proves statements given to the hub (ADD COLUMN nullable, ADD COLUMN NOT NULL DEFAULT, RENAME, DROP) reach
    // every region at their place in the log while all regions write, in both capture modes: no write is lost,
    // rows written before a column existed get its default, values written under the old name survive the rename,
    // and the log holds the four versions in order.
    @Test func statementsGivenToTheHubReplicateUnderLoad() async throws {
        try await Deployment.with(regions: 3, tables: Self.tables, ddl: Self.ddl) { deployment in
            try await underLoad(deployment, finalColumns: ["id", "title", "qty"]) {
                let steps: [(String, [String])] = [
                    ("ALTER TABLE public.items ADD COLUMN note text", ["id", "label", "note"]),
                    ("ALTER TABLE items ADD COLUMN qty integer NOT NULL DEFAULT 0", ["id", "label", "note", "qty"]),
                    ("RENAME COLUMN label TO title", ["id", "title", "note", "qty"]),
                    ("ALTER TABLE public.items DROP COLUMN note", ["id", "title", "qty"]),
                ]
                for (version, (statement, columns)) in steps.enumerated() {
                    try await Task.sleep(for: .milliseconds(400))
                    let answer = try await schemaChange(deployment, statement)
                    #expect(answer["version"] as? Int == version + 2, "\(statement)")
                    try await waitUntil("every region has \(columns) after \(statement)") {
                        for region in deployment.regions where try await self.columns(deployment, region) != columns {
                            return false
                        }
                        return true
                    }
                }
            }
            let logged = try await deployment.sql("hub") { connection in
                try connection.query(
                    "SELECT (row::jsonb ->> 'version')::int FROM starling_hub.log WHERE kind = 'schema' ORDER BY seq"
                ).map { try $0.int64(0) }
            }
            #expect(logged == [2, 3, 4, 5])
        }
    }

    // Proves refusals name the reason and change nothing: a statement for another table, a key column, a
    // narrowing type change, a volatile default, a statement PostgreSQL rejects.
    @Test func refusedStatementsSayWhy() async throws {
        try await Deployment.with(regions: 1, tables: Self.tables, ddl: Self.ddl) { deployment in
            let cases: [(String, Int, String)] = [
                ("ALTER TABLE public.other ADD COLUMN x int", 400, "not table public.items"),
                ("ALTER TABLE items DROP COLUMN id", 400, "key column id"),
                ("ALTER TABLE items ALTER COLUMN label TYPE varchar(5)", 400, "could change or lose values"),
                ("ALTER TABLE items ALTER COLUMN id TYPE bigint USING id + 1", 400, "USING expression"),
                ("ALTER TABLE items ADD COLUMN at timestamptz DEFAULT now()", 400, "not a constant"),
                ("ALTER TABLE items ADD COLUMN bad nosuchtype", 400, "nosuchtype"),
                ("ALTER TABLE items ADD COLUMN x int; DROP TABLE items", 400, "invalid_statement"),
            ]
            for (statement, status, phrase) in cases {
                let body = try JSONSerialization.data(withJSONObject: ["table": "public.items", "statement": statement])
                let (answered, json) = try await deployment.admin("POST", "/v1/schema", body: Array(body))
                let error = (json as? [String: Any])?["error"] as? [String: Any]
                let text = "\(error?["code"] ?? "") \(error?["message"] ?? "")"
                #expect(answered == status, "\(statement): \(text)")
                #expect(text.contains(phrase), "\(statement): \(text)")
            }
            #expect(try await columns(deployment, "r1") == ["id", "label"])
            let logged = try await deployment.sql("hub") {
                try $0.query("SELECT count(*) FROM starling_hub.log WHERE kind = 'schema'")[0].int64(0)
            }
            #expect(logged == 0)
        }
    }

    // Proves a rolling migration run by hand, region after region, while every region writes: under WAL capture
    // each statement is captured where it ran and recognised as one change (one version per statement, not one per
    // region), replication stays up and nothing is lost; under trigger capture the statement is refused in the
    // region with the way to give it to the hub.
    @Test func rollingMigrationRunInEveryRegion() async throws {
        try await Deployment.with(regions: 3, tables: Self.tables, ddl: Self.ddl) { deployment in
            let isWAL = try await deployment.sql("r1") {
                try $0.query("SELECT current_setting('wal_level') = 'logical'")[0].bool(0)
            } && deployment.agentCapture != "trigger"
            guard isWAL else {
                let refusal = try await deployment.sql("r1") { connection -> String in
                    do {
                        try connection.execute("ALTER TABLE items ADD COLUMN note text")
                        return "accepted"
                    } catch {
                        return "\(error)"
                    }
                }
                #expect(refusal.contains("refused") && refusal.contains("starling admin ddl"), "\(refusal)")
                #expect(try await columns(deployment, "r1") == ["id", "label"])
                return
            }
            try await underLoad(deployment, finalColumns: ["id", "label", "qty"]) {
                for statement in [
                    "ALTER TABLE items ADD COLUMN IF NOT EXISTS note text",
                    "ALTER TABLE items ADD COLUMN IF NOT EXISTS qty integer NOT NULL DEFAULT 0",
                    "ALTER TABLE items DROP COLUMN IF EXISTS note",
                ] {
                    try await Task.sleep(for: .milliseconds(400))
                    for region in deployment.regions {
                        try await deployment.sql(region) { try $0.execute(statement) }
                        try await Task.sleep(for: .milliseconds(150))
                    }
                }
                try await waitUntil("every region has id, label, qty") {
                    for region in deployment.regions
                    where try await self.columns(deployment, region) != ["id", "label", "qty"] {
                        return false
                    }
                    return true
                }
            }
            let logged = try await deployment.sql("hub") { connection in
                try connection.query(
                    "SELECT (row::jsonb ->> 'version')::int, origin FROM starling_hub.log WHERE kind = 'schema' ORDER BY seq"
                ).map { (try $0.int64(0), try $0.string(1)) }
            }
            #expect(logged.map(\.0) == [2, 3, 4], "one version per statement")
            #expect(logged.allSatisfy { deployment.regions.contains($0.1) }, "captured where they ran: \(logged)")
        }
    }

    // Proves the refused path of a change made in a region (README "Schema changes", run in a region): r2, its agent
    // down, adds a column with another type than the one r1 added first. r2's push of it is refused with 409
    // `schema_conflict` naming both shapes, its pushes wait and `/v1/status` says why; once the operator gives r2's
    // table the hub's shape (itself a change captured there), the agent drops the refused change, follows the log and
    // the row r2 wrote meanwhile reaches r1, its value read under the hub's type (a number captured under r2's
    // `integer` arrives as the text the cast gave r2's row; before 2026-12-07 the hub refused it with 400 and r2's
    // pushes waited for good): the regions converge in the hub's shape. r2's agent is killed (-9) while it waits and
    // finds the wait again when it restarts.
    @Test func aDifferentChangeMadeInTwoRegionsWaitsForTheOperator() async throws {
        try await refusedChangeConverges(
            hubType: "text", refusedType: "integer", rows: ["(10, 'ten', 5)", "(11, 'eleven', NULL)"],
            fix: "ALTER TABLE items ALTER COLUMN note TYPE text", notes: ["1:-", "2:after", "10:5", "11:-"],
            restartsWhileWaiting: true)
    }

    // The same with the types the other way round, where the hub's type does not take every value written under the
    // refused one: r2's text '7' is read as the integer 7, and 'five', which no integer cast takes, arrives as what
    // the operator's `ALTER … USING` made of it in r2 (its length, 4).
    @Test func valuesTheHubsTypeDoesNotTakeArriveAsTheOperatorConvertedThem() async throws {
        try await refusedChangeConverges(
            hubType: "integer", refusedType: "text", rows: ["(10, 'ten', '7')", "(11, 'eleven', 'five')"],
            fix: "ALTER TABLE items ALTER COLUMN note TYPE integer "
                + "USING CASE WHEN note ~ '^[0-9]+$' THEN note::integer ELSE length(note) END",
            notes: ["1:-", "2:8", "10:7", "11:4"])
    }

    private func refusedChangeConverges(
        hubType: String, refusedType: String, rows: [String], fix: String, notes expected: [String],
        restartsWhileWaiting: Bool = false
    ) async throws {
        try await Deployment.with(regions: 2, tables: Self.tables, ddl: Self.ddl) { deployment in
            let isWAL = try await deployment.sql("r1") {
                try $0.query("SELECT current_setting('wal_level') = 'logical'")[0].bool(0)
            } && deployment.agentCapture != "trigger"
            // Under trigger capture the region refuses the statement (rollingMigrationRunInEveryRegion).
            guard isWAL else { return }
            try await deployment.sql("r1") { try $0.execute("INSERT INTO items VALUES (1, 'one')") }
            try await deployment.waitForConvergence()
            try await deployment.killAgent("r2")
            try await deployment.sql("r1") { try $0.execute("ALTER TABLE items ADD COLUMN note \(hubType)") }
            try await waitUntil("the hub has r1's change") {
                try await deployment.sql("hub") { connection in
                    try connection.query("SELECT count(*) FROM starling_hub.log WHERE kind = 'schema'")[0].int64(0)
                } == 1
            }
            try await deployment.sql("r2") { connection in
                try connection.execute("ALTER TABLE items ADD COLUMN note \(refusedType)")
                for row in rows { try connection.execute("INSERT INTO items VALUES \(row)") }
            }
            try await deployment.startAgent("r2")
            try await waitUntil("r2 reports the refused change") {
                let (_, status) = try await deployment.admin("GET", "/v1/status")
                let r2 = ((status as? [String: Any])?["regions"] as? [[String: Any]])?.first {
                    $0["name"] as? String == "r2"
                }
                let error = r2?["last_error"] as? String ?? ""
                return error.contains("does not follow from version 2 in force (id integer, label text, note \(hubType))")
                    && error.contains("would be (id integer, label text, note \(refusedType))")
            }
            #expect(try await deployment.sql("r1") { try $0.query("SELECT count(*) FROM items")[0].int64(0) } == 1)
            if restartsWhileWaiting {
                try await deployment.killAgent("r2")
                try await deployment.startAgent("r2")
                let refusal = "does not follow from version 2 in force (id integer, label text, note \(hubType))"
                _ = try await deployment.agents["r2"]?.waitForOutputLine(containing: refusal, timeout: .seconds(60))
                #expect(try await deployment.sql("r1") { try $0.query("SELECT count(*) FROM items")[0].int64(0) } == 1)
            }
            try await deployment.sql("r2") { try $0.execute(fix) }
            let after = hubType == "text" ? "'after'" : "8"
            try await deployment.sql("r1") { try $0.execute("INSERT INTO items VALUES (2, 'two', \(after))") }
            try await deployment.waitForConvergence()
            for region in deployment.regions {
                #expect(try await columns(deployment, region) == ["id", "label", "note"], "\(region)")
                let notes = try await deployment.sql(region) { connection in
                    try connection.query("SELECT id, coalesce(note::text, '-') FROM items ORDER BY id").map {
                        "\(try $0.int64(0)):\(try $0.string(1))"
                    }
                }
                #expect(notes == expected, "\(region)")
            }
            let types = try await deployment.sql("r2") { connection in
                try connection.query("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                    + "WHERE attrelid = 'items'::regclass AND attname = 'note'")[0].string(0)
            }
            #expect(types == hubType)
        }
    }

    // Proves a schema change one region cannot apply (a view there depends on the dropped column) becomes that
    // region's dead letter and an open conflict with the statement and PostgreSQL's error, stops only that table
    // there (its entries wait, the other table keeps replicating, the region reports why), and is applied once the
    // operator removed the cause, after which the regions converge.
    @Test func aChangeARegionCannotApplyStopsOnlyThatTable() async throws {
        let ddl = """
            CREATE TABLE items (id integer PRIMARY KEY, label text, note text);
            CREATE TABLE other (id integer PRIMARY KEY, v text);
            """
        let tables = [(name: "public.items", policy: "lww"), (name: "public.other", policy: "lww")]
        try await Deployment.with(regions: 2, tables: tables, ddl: ddl) { deployment in
            try await deployment.sql("r2") { try $0.execute("CREATE VIEW item_notes AS SELECT id, note FROM items") }
            try await deployment.sql("r1") { try $0.execute("INSERT INTO items VALUES (1, 'one', 'n1')") }
            try await deployment.waitForConvergence()
            _ = try await schemaChange(deployment, "ALTER TABLE items DROP COLUMN note")
            try await waitUntil("r1 applied the change, r2 dead-lettered it") {
                let letters = try await deployment.sql("r2") { connection in
                    try connection.query("SELECT error FROM starling.dead_letters").map { try $0.string(0) }
                }
                return try await self.columns(deployment, "r1") == ["id", "label"] && letters.count == 1
                    && letters[0].contains("DROP COLUMN note") && letters[0].contains("depend")
            }
            #expect(try await columns(deployment, "r2") == ["id", "label", "note"])
            try await deployment.sql("r1") { connection in
                try connection.execute("INSERT INTO items VALUES (2, 'two')")
                try connection.execute("INSERT INTO other VALUES (1, 'flows')")
            }
            try await waitUntil("the other table replicates to r2 while items waits there") {
                try await deployment.sql("r2") { try $0.query("SELECT count(*) FROM other")[0].int64(0) } == 1
            }
            #expect(try await deployment.sql("r2") { try $0.query("SELECT count(*) FROM items")[0].int64(0) } == 1)
            try await waitUntil("the hub shows the open conflict with the statement and the error") {
                try await deployment.conflicts().contains { conflict in
                    conflict["status"] as? String == "open" && conflict["table"] as? String == "public.items"
                }
            }
            let open = try await deployment.conflicts().first { $0["table"] as? String == "public.items" }
            let resolve = try await deployment.admin(
                "POST", "/v1/conflicts/\(open?["id"] as? Int ?? 0)/resolve", body: Array(#"{"pick":"incoming"}"#.utf8))
            let refusal = ((resolve.json as? [String: Any])?["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(resolve.status == 400 && refusal.contains("no row to pick"), "\(refusal)")
            let (_, status) = try await deployment.admin("GET", "/v1/status")
            let r2 = ((status as? [String: Any])?["regions"] as? [[String: Any]])?.first { $0["name"] as? String == "r2" }
            #expect((r2?["last_error"] as? String ?? "").contains("could not be applied"), "\(String(describing: r2))")

            try await deployment.sql("r2") { try $0.execute("DROP VIEW item_notes") }
            try await deployment.sql("r1") { try $0.execute("INSERT INTO items VALUES (3, 'three')") }
            try await deployment.waitForConvergence()
            #expect(try await columns(deployment, "r2") == ["id", "label"])
            #expect(try await deployment.sql("r2") { try $0.query("SELECT count(*) FROM items")[0].int64(0) } == 3)
        }
    }

    // Proves a region that joins after a schema change must have the shape in force (it bootstraps from the rows
    // as they are now and would never see the change): with the old columns its agent stops naming both lists;
    // with the columns in force it bootstraps and converges. An agent of a region that has not applied the change
    // yet restarts fine (its shape is an earlier version) and applies it from the log.
    @Test func regionsJoiningOrRestartingAfterAChange() async throws {
        try await Deployment.with(regions: 3, tables: Self.tables, ddl: Self.ddl, startAgents: false) { deployment in
            try await deployment.startAgent("r1")
            try await deployment.startAgent("r2")
            try await deployment.sql("r1") { try $0.execute("INSERT INTO items VALUES (1, 'one')") }
            try await deployment.killAgent("r2")
            _ = try await schemaChange(deployment, "ALTER TABLE items ADD COLUMN note text DEFAULT 'n'")
            try await waitUntil("r1 applied the change") {
                try await self.columns(deployment, "r1") == ["id", "label", "note"]
            }
            try await deployment.sql("r1") { try $0.execute("INSERT INTO items VALUES (2, 'two', 'two')") }

            let refused = try deployment.launchAgent("r3")
            let status = try await refused.waitForExit(timeout: .seconds(60))
            #expect(status != 0)
            #expect(refused.output.contains("schema_mismatch") && refused.output.contains("columns in force"), "\(refused.output)")
            try await deployment.sql("r3") { try $0.execute("ALTER TABLE items ADD COLUMN note text DEFAULT 'n'") }
            try await deployment.startAgent("r3")
            try await deployment.startAgent("r2")
            try await deployment.waitForConvergence()
            for region in deployment.regions {
                #expect(try await columns(deployment, region) == ["id", "label", "note"], "\(region)")
                let notes = try await deployment.sql(region) { connection in
                    try connection.query("SELECT note FROM items ORDER BY id").map { try $0.string(0) }
                }
                #expect(notes == ["n", "two"], "\(region)")
            }
        }
    }

    // Proves index changes given to the hub reach every region (a unique index created, then dropped), the same in
    // both capture modes, with the table's stream going on.
    @Test func indexChangesReplicate() async throws {
        try await Deployment.with(regions: 2, tables: Self.tables, ddl: Self.ddl) { deployment in
            func indexes(_ region: String) async throws -> [String] {
                try await deployment.sql(region) { connection in
                    try connection.query(
                        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'items' AND indexname <> 'items_pkey' "
                            + "ORDER BY 1"
                    ).map { try $0.string(0) }
                }
            }
            _ = try await schemaChange(deployment, "CREATE UNIQUE INDEX CONCURRENTLY items_label ON items (label)")
            try await waitUntil("every region has the index") {
                for region in deployment.regions where try await indexes(region) != ["items_label"] { return false }
                return true
            }
            try await deployment.sql("r1") { try $0.execute("INSERT INTO items VALUES (1, 'one')") }
            try await deployment.waitForConvergence()
            let duplicate = try await deployment.sql("r2") { connection -> String in
                do {
                    try connection.execute("INSERT INTO items VALUES (2, 'one')")
                    return "accepted"
                } catch {
                    return "\(error)"
                }
            }
            #expect(duplicate.contains("items_label"), "the replicated unique index holds in r2: \(duplicate)")
            _ = try await schemaChange(deployment, "DROP INDEX items_label")
            try await waitUntil("no region has it") {
                for region in deployment.regions where try await !indexes(region).isEmpty { return false }
                return true
            }
            try await deployment.sql("r2") { try $0.execute("INSERT INTO items VALUES (2, 'one')") }
            try await deployment.waitForConvergence()
        }
    }
}
