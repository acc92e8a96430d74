import StarlingCore
import StarlingHTTP2
import StarlingHub
import StarlingPostgres
import StarlingTestSupport
import Testing

/// The sequencer skips the idempotency lookups of an id above its origin's mark (migration 6); these prove the
/// skip never loses a stored verdict: across restarts, for ids pushed out of order, and for a hub migrated from
/// version 5 with verdicts already stored.
@Suite(.timeLimit(.minutes(3)))
struct OriginMarksTests {
    /// Runs `body` with a hub started on `database` (a second call on the same database is a restart).
    private static func withHub<T>(_ database: TestDatabase, _ body: (HubHarness) async throws -> T) async throws -> T {
        try await HubHarness.run(
            HubHarness.configuration(database: database.url, tables: HubHarness.defaultTables), on: database, body)
    }

    private static func query(_ database: TestDatabase, _ sql: String) async throws -> [String] {
        let url = database.url
        return try await Task.detached {
            let connection = try PostgresConnection.connect(url: url)
            defer { connection.close() }
            return try connection.query(sql).map { try $0.string(0) }
        }.value
    }

    @Test func rePushesAfterARestartAnswerTheStoredVerdicts() async throws {
        // Proves the marks are durable: after a restart, re-pushed accepted and rejected changes (ids at or below
        // the mark) answer their stored verdicts and add nothing; without the stored marks they would be decided
        // again as new changes (a second log entry, a second conflict).
        try await TestDatabase.with { database in
            let changes: [(String, JSONValue)] = [
                ("r1", Changes.insert("r1", 10, id: 1)),
                ("r1", Changes.insert("r1", 11, table: "public.firsts", id: 2)),
                ("r2", Changes.insert("r2", 3, table: "public.firsts", id: 2, hlc: 5000)),
            ]
            let first = try await Self.withHub(database) { hub in
                var answers: [JSONValue] = []
                for (region, change) in changes { answers.append(try await hub.push(region, [change]).json) }
                #expect(answers[2]["results"]?[0]?["status"] == "rejected")
                return (answers, try await hub.counts())
            }
            #expect(try await Self.query(database, "SELECT origin || '=' || max_local_id FROM starling_hub.origin_marks ORDER BY 1") == ["r1=11", "r2=3"])
            try await Self.withHub(database) { (hub) async throws -> Void in
                for ((region, change), answer) in zip(changes, first.0) {
                    let again = try await hub.push(region, [change]).json
                    #expect(again["results"] == answer["results"])
                    #expect(again["term"] != nil && again["term"] != answer["term"], "the restart opened a new term")
                }
                #expect(try await hub.counts() == first.1)
                #expect(hub.hub.head == 2)
            }
        }
    }

    @Test func aFreshIdBelowTheMarkIsDecidedAndAnIdAboveItIsNew() async throws {
        // Proves an origin pushing ids out of order loses nothing: r1:5 after r1:9 is looked up, found new and
        // accepted; each re-push in one batch with new ids answers the stored verdict; other origins are apart.
        try await TestDatabase.with { database in
            try await Self.withHub(database) { (hub) async throws -> Void in
                let high = try await hub.push("r1", [Changes.insert("r1", 9, id: 1)])
                #expect(high.json["results"]?[0]?["seq"] == 1)
                let low = try await hub.push("r1", [Changes.insert("r1", 5, id: 2)])
                #expect(low.json["results"]?[0]?["status"] == "accepted" && low.json["results"]?[0]?["seq"] == 2)
                let other = try await hub.push("r2", [Changes.insert("r2", 9, id: 3)])
                #expect(other.json["results"]?[0]?["seq"] == 3)
                let mixed = try await hub.push(
                    "r1",
                    [
                        Changes.insert("r1", 5, id: 2), Changes.insert("r1", 12, id: 4), Changes.insert("r1", 9, id: 1),
                        Changes.insert("r1", 12, id: 4),
                    ])
                let seqs = mixed.json["results"]?.arrayValue?.compactMap { $0["seq"]?.int64Value }
                #expect(seqs == [2, 4, 1, 4])
                #expect(hub.hub.head == 4)
            }
            #expect(try await Self.query(database, "SELECT origin || '=' || max_local_id FROM starling_hub.origin_marks ORDER BY 1") == ["r1=12", "r2=9"])
        }
    }

    @Test func migrationSixMarksWhatAVersionFiveHubStored() async throws {
        // Proves migration 6 fills the marks from the log's change and merge entries, the rejected decisions and
        // the pruned watermarks (origins with colons, the largest number wins), ignores hub-made entries, and
        // gives an id whose number does not parse the largest mark so that origin is always looked up.
        try await TestDatabase.with { database in
            let url = database.url
            try await Task.detached {
                let connection = try PostgresConnection.connect(url: url)
                defer { connection.close() }
                let five = try PostgresMigrator(schema: HubMigrations.schema, migrations: Array(HubMigrations.all.prefix(5)))
                #expect(try five.migrate(connection) == [1, 2, 3, 4, 5])
                try connection.execute(
                    "CREATE TABLE starling_hub.log_p1 PARTITION OF starling_hub.log FOR VALUES FROM (1) TO (1000)")
                try connection.execute(
                    """
                    INSERT INTO starling_hub.log (seq, origin, change_id, tx, table_name, op, key, row, hlc, kind, rewritten)
                    VALUES (1, 'r1', 'r1:7', 't', 'public.items', 'insert', '{"id":1}', '{}', 1, 'change', false),
                           (2, 'r1', 'r1:12', 't', 'public.items', 'insert', '{"id":2}', '{}', 1, 'change', false),
                           (3, 'r2', 'r2:4', 't', 'public.items', 'update', '{"id":2}', '{}', 1, 'merge', true),
                           (4, 'hub', 'hub:99', 't', 'public.items', 'update', '{"id":2}', '{}', 1, 'resolution', true),
                           (5, 'eu:west', 'eu:west:8', 't', 'public.items', 'insert', '{"id":3}', '{}', 1, 'change', false),
                           (6, 'odd', 'odd:x', 't', 'public.items', 'insert', '{"id":4}', '{}', 1, 'change', false)
                    """)
                try connection.execute(
                    "INSERT INTO starling_hub.decisions (change_id, table_name, key, conflict_id) "
                        + "VALUES ('r2:20', 'public.items', '{\"id\":2}', 1), ('r3:2', 'public.items', '{\"id\":2}', 2)")
                try connection.execute(
                    "INSERT INTO starling_hub.pruned_changes (origin, max_local_id, max_seq) VALUES ('r3', 40, 1), ('r1', 3, 1)")
                let six = try PostgresMigrator(
                    schema: HubMigrations.schema, migrations: Array(HubMigrations.all.prefix(6)))
                #expect(try six.migrate(connection) == [6])
            }.value
            #expect(
                try await Self.query(
                    database, "SELECT origin || '=' || max_local_id FROM starling_hub.origin_marks ORDER BY 1")
                    == ["eu:west=8", "odd=9223372036854775807", "r1=12", "r2=20", "r3=40"])
        }
    }
}
