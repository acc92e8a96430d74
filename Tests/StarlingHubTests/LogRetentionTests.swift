import Logging
import StarlingCore
import StarlingHTTP2
import StarlingHub
import StarlingPostgres
import StarlingTestSupport
import Testing

/// Retention: partitions of the log dropped below every active region's cursor and past the window.
@Suite(.timeLimit(.minutes(2)))
struct LogRetentionTests {
    /// A hub like ``HubHarness/with(tables:limits:_:)`` with its own retention settings.
    static func with<T>(_ retention: HubConfiguration.Retention, _ body: (HubHarness) async throws -> T)
        async throws -> T
    {
        try await TestDatabase.with { database in
            var configuration = HubHarness.configuration(database: database.url, tables: HubHarness.defaultTables)
            configuration.retention = retention
            return try await HubHarness.run(configuration, on: database, body)
        }
    }

    static func retention(window: String = "0s", entries: Int = 10, inactiveAfter: String = "30d")
        -> HubConfiguration.Retention
    {
        var retention = HubConfiguration.Retention()
        retention.window = window
        retention.partitionEntries = entries
        retention.inactiveAfter = inactiveAfter
        return retention
    }

    /// Pushes `count` inserts from r1 (ids and local ids `from..<from+count`), five per push.
    static func pushInserts(_ hub: HubHarness, from: Int, count: Int) async throws {
        var next = from
        while next < from + count {
            let batch = (next..<min(next + 5, from + count)).map { Changes.insert("r1", $0, id: Int64($0)) }
            let pushed = try await hub.push("r1", batch)
            #expect(pushed.status == 200)
            next += batch.count
        }
    }

    static func query(_ hub: HubHarness, _ sql: String) async throws -> [Int64] {
        let url = hub.database.url
        return try await Task.detached {
            let connection = try PostgresConnection.connect(url: url)
            defer { connection.close() }
            return try connection.query(sql).map { try $0.int64(0) }
        }.value
    }

    /// The value of one unlabelled metric line in `/metrics`.
    static func metric(_ hub: HubHarness, _ name: String) async throws -> Double? {
        let response = try await hub.metrics()
        let text = String(decoding: response.body, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }

    @Test func dropsExactlyThePartitionsBelowTheSlowestActiveCursor() async throws {
        // Proves pruning drops the partitions wholly at or below the minimum cursor of the regions that pull
        // (r1 only pushes, so it does not hold the log back), keeps the rest, and the metrics say so.
        try await Self.with(Self.retention()) { hub in
            try await Self.pushInserts(hub, from: 1, count: 35)
            #expect(try await hub.pull("r2", after: 25).status == 200)
            #expect(try await hub.pull("r3", after: 21).status == 200)
            let outcome = try await hub.hub.pruneLog()
            // Partitions [1,11) and [11,21) are at or below 21; [21,31) holds 21..30, above r3's cursor.
            #expect(outcome.partitionsDropped == 2)
            #expect(outcome.prunedThrough == 20)
            #expect(try await Self.query(hub, "SELECT min(seq) FROM starling_hub.log") == [21])
            #expect(try await Self.query(hub, "SELECT count(*) FROM starling_hub.log") == [15])
            #expect(try await Self.metric(hub, "starling_hub_log_oldest_retained_seq") == 21)
            #expect(try await Self.metric(hub, "starling_hub_log_partitions_dropped_total") == 2)
            #expect(try await Self.metric(hub, "starling_hub_log_entries") == 15)
            #expect((try await Self.metric(hub, "starling_hub_log_size_bytes") ?? 0) > 0)

            let behind = try await hub.pull("r4", after: 19)
            #expect(behind.status == 410)
            #expect(behind.json["error"]?["code"] == "cursor_pruned")
            let edge = try await hub.pull("r3", after: 20)
            #expect(edge.status == 200 && edge.json["entries"]?.arrayValue?.first?["seq"] == 21)
            // A second round with the same cursors drops nothing more.
            #expect(try await hub.hub.pruneLog().partitionsDropped == 0)
        }
    }

    @Test func theWindowKeepsRecentEntries() async throws {
        // Proves entries younger than the window stay even when every region has pulled them.
        try await Self.with(Self.retention(window: "1h")) { hub in
            try await Self.pushInserts(hub, from: 1, count: 25)
            #expect(try await hub.pull("r2", after: 25).status == 200)
            #expect(try await hub.hub.pruneLog().partitionsDropped == 0)
            #expect(try await Self.query(hub, "SELECT count(*) FROM starling_hub.log") == [25])
        }
    }

    @Test func anInactiveRegionStopsHoldingTheLog() async throws {
        // Proves a region that has not pulled within inactive_after no longer blocks pruning.
        try await Self.with(Self.retention(inactiveAfter: "1s")) { hub in
            try await Self.pushInserts(hub, from: 1, count: 25)
            #expect(try await hub.pull("r2", after: 25).status == 200)
            #expect(try await hub.pull("r3", after: 0).status == 200)
            #expect(try await hub.hub.pruneLog().partitionsDropped == 0)
            let deadline = ContinuousClock.now + .seconds(20)
            var dropped = 0
            while dropped == 0 && ContinuousClock.now < deadline {
                // r2 keeps pulling (stays active); r3 went quiet.
                #expect(try await hub.pull("r2", after: 25).status == 200)
                dropped = try await hub.hub.pruneLog().partitionsDropped
                if dropped == 0 { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(dropped == 2)
        }
    }

    @Test func idempotencyHoldsAcrossPartitionsAndPruning() async throws {
        // Proves a re-push returns the stored verdict whichever partition holds the entry, and a re-push of a
        // change whose entry was pruned is answered accepted without a second entry.
        try await Self.with(Self.retention()) { hub in
            try await Self.pushInserts(hub, from: 1, count: 25)
            let again = try await hub.push("r1", [Changes.insert("r1", 3, id: 3), Changes.insert("r1", 24, id: 24)])
            #expect(again.json["results"]?[0]?["seq"] == 3 && again.json["results"]?[1]?["seq"] == 24)
            #expect(hub.hub.head == 25)

            #expect(try await hub.pull("r2", after: 25).status == 200)
            #expect(try await hub.hub.pruneLog().prunedThrough == 20)
            let pruned = try await hub.push("r1", [Changes.insert("r1", 7, id: 7)])
            #expect(pruned.json["results"]?[0]?["status"] == "accepted")
            #expect(pruned.json["results"]?[0]?["seq"] == 20)
            let fresh = try await hub.push("r1", [Changes.insert("r1", 26, id: 26)])
            #expect(fresh.json["results"]?[0]?["seq"] == 26)
            #expect(hub.hub.head == 26)
            #expect(try await Self.query(hub, "SELECT count(*) FROM starling_hub.log") == [6])
        }
    }

    @Test func aRestartedHubContinuesAfterThePrunedLog() async throws {
        // Proves the sequencer's next seq comes after pruned entries even when the log is empty.
        try await TestDatabase.with { database in
            var configuration = HubHarness.configuration(database: database.url, tables: HubHarness.defaultTables)
            configuration.retention = Self.retention()
            var logger = Logger(label: "test.hub")
            logger.logLevel = .warning
            let first = try Hub(configuration: configuration, logger: logger)
            try await first.start()
            let client = try HTTP2Client(
                configuration: HTTP2ClientConfiguration(baseURL: "http://127.0.0.1:\(first.localAddress?.port ?? 0)"))
            let harness = HubHarness(hub: first, database: database, client: client)
            try await Self.pushInserts(harness, from: 1, count: 10)
            #expect(try await harness.pull("r2", after: 10).status == 200)
            #expect(try await first.pruneLog().prunedThrough == 10)
            client.shutdown()
            await first.shutdown(gracePeriod: .seconds(1))

            let second = try Hub(configuration: configuration, logger: logger)
            try await second.start()
            #expect(second.head == 10)
            await second.shutdown(gracePeriod: .seconds(1))
        }
    }

    @Test func theMigrationMovesAnExistingLogIntoPartitions() async throws {
        // Proves migration 3 on a hub that ran versions 1-2: every log entry is kept, in seq order, pulls and
        // the sequencer continue after it, and a re-pushed change still gets its stored verdict.
        try await TestDatabase.with { database in
            let url = database.url
            try await Task.detached {
                let connection = try PostgresConnection.connect(url: url)
                defer { connection.close() }
                let early = try PostgresMigrator(schema: HubMigrations.schema, migrations: Array(HubMigrations.all.prefix(2)))
                #expect(try early.migrate(connection) == [1, 2])
                // What a version-2 hub wrote for 30 accepted inserts of r1 (ids r1:1...r1:30, keys 1...30).
                try connection.execute(
                    """
                    INSERT INTO starling_hub.log (seq, origin, change_id, tx, table_name, op, key, row, hlc, kind, rewritten)
                    SELECT g, 'r1', 'r1:' || g, 'r1:tx' || g, 'public.items', 'insert', '{"id":' || g || '}',
                           '{"id":' || g || '}', 1000, 'change', false FROM generate_series(1, 30) g
                    """)
                try connection.execute(
                    """
                    INSERT INTO starling_hub.heads (table_name, key, seq, origin, hlc, row, op, prev_foreign_seq)
                    SELECT 'public.items', '{"id":' || g || '}', g, 'r1', 1000, '{"id":' || g || '}', 'insert', 0
                    FROM generate_series(1, 30) g
                    """)
            }.value
            var configuration = HubHarness.configuration(database: url, tables: HubHarness.defaultTables)
            configuration.retention = Self.retention()
            var logger = Logger(label: "test.hub")
            logger.logLevel = .warning
            let hub = try Hub(configuration: configuration, logger: logger)
            try await hub.start()
            let client = try HTTP2Client(
                configuration: HTTP2ClientConfiguration(baseURL: "http://127.0.0.1:\(hub.localAddress?.port ?? 0)"))
            let harness = HubHarness(hub: hub, database: database, client: client)
            do {
                #expect(hub.head == 30)
                #expect(try await Self.query(harness, "SELECT count(*) FROM starling_hub.log_partitions") == [1])
                #expect(try await Self.query(harness, "SELECT count(*) FROM starling_hub.log_p0000000000000000001") == [30])
                #expect(
                    try await Self.query(harness, "SELECT count(*) FROM pg_class WHERE relname = 'log_unpartitioned'") == [0])
                let pulled = try await harness.pull("r2", after: 0)
                let seqs = pulled.json["entries"]?.arrayValue?.compactMap { $0["seq"]?.int64Value } ?? []
                #expect(seqs == Array(1...30))
                let again = try await harness.push("r1", [Changes.insert("r1", 7, id: 7)])
                #expect(again.json["results"]?[0]?["status"] == "accepted" && again.json["results"]?[0]?["seq"] == 7)
                let fresh = try await harness.push("r1", [Changes.insert("r1", 31, id: 31)])
                #expect(fresh.json["results"]?[0]?["seq"] == 31)
                #expect(try await Self.query(harness, "SELECT count(*) FROM starling_hub.log") == [31])
            } catch {
                Issue.record(error)
            }
            client.shutdown()
            await hub.shutdown(gracePeriod: .seconds(1))
        }
    }
}
