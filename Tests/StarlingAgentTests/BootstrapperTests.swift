@testable import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Synchronization
import Testing

/// A hub double serving `GET /v1/snapshot` as the hub does: heads in bytewise order of their canonical key
/// text (the hub's `heads.key COLLATE "C"`), `limit` per page, `next` the last key of a full page.
final class SnapshotHub: HubLink {
    /// Canonical key text → (key, image, seq, origin).
    private let heads: [(text: String, row: SnapshotPage.Row)]
    let seq: Int64
    private let requests = Mutex<[String?]>([])

    init(rows: [SnapshotPage.Row], seq: Int64) {
        heads = rows.map { (AgentStore.text($0.key), $0) }
            .sorted { Array($0.text.utf8).lexicographicallyPrecedes(Array($1.text.utf8)) }
        self.seq = seq
    }

    /// The `after` of every snapshot request, in order.
    var afters: [String?] { requests.withLock { $0 } }

    func config() async throws(AgentError) -> HubConfig { HubConfig(region: "r3", tables: []) }
    func register(_ tables: [TableShape]) async throws(AgentError) {}
    func push(_ changes: [Change]) async throws(AgentError) -> [Verdict] { [] }
    func pull(after: Int64, limit: Int, waitMs: Int) async throws(AgentError) -> PullPage {
        PullPage(entries: [], next: after, head: seq)
    }
    func reportStatus(_ status: AgentStatus) async throws(AgentError) {}
    func reportDeadLetters(_ letters: [DeadLetter]) async throws(AgentError) {}

    func snapshot(table: String, after: String?, limit: Int) async throws(AgentError) -> SnapshotPage {
        requests.withLock { $0.append(after) }
        let rest = heads.filter { head in
            after.map { Array($0.utf8).lexicographicallyPrecedes(Array(head.text.utf8)) } ?? true
        }
        let page = Array(rest.prefix(limit))
        var json: JSONObject = [
            "seq": .integer(seq),
            "rows": .array(
                page.map { head in
                    .object([
                        "key": .object(head.row.key), "row": head.row.row.map(JSONValue.object) ?? .null,
                        "seq": .integer(head.row.seq), "origin": .string(head.row.origin),
                    ])
                }),
            "next": page.count == limit ? .string(page.last?.text ?? "") : .null,
        ]
        if after == nil { json["heads"] = .integer(Int64(heads.count)) }
        return try SnapshotPage(json: .object(json))
    }
}

/// Bootstrap (issue 7) against a snapshot double and a real region database.
@Suite(.timeLimit(.minutes(3)))
struct BootstrapperTests {
    static let ddl = "CREATE TABLE public.t (k int PRIMARY KEY, v text);"

    static func row(_ k: Int, seq: Int64) -> SnapshotPage.Row {
        SnapshotPage.Row(
            key: ["k": .integer(Int64(k))], row: ["k": .integer(Int64(k)), "v": .string("v\(k)")], seq: seq,
            origin: "r1")
    }

    static func bootstrapper(_ hub: any HubLink, _ database: TestDatabase, pageLimit: Int) -> (Bootstrapper, PostgresWorker) {
        let worker = PostgresWorker(url: database.url)
        return (
            Bootstrapper(
                region: "r3", hub: hub, database: worker, store: AgentStore(region: "r3"), replaceLocal: false,
                pageLimit: pageLimit), worker
        )
    }

    @Test func everyHeadIsLoadedWhenKeyTextOrderDiffersFromKeyOrder() async throws {
        // Proves an empty region loads every head when pages end where the hub's bytewise key-text order
        // ({"k":54} < {"k":5}) and the region's jsonb key order (5 < 54) disagree: no key is skipped.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.ddl, tables: ["public.t"])
            defer { connection.close() }
            let hub = SnapshotHub(rows: (0..<550).map { Self.row($0, seq: Int64($0) + 1) }, seq: 550)
            let (bootstrapper, worker) = Self.bootstrapper(hub, database, pageLimit: 500)
            let (cursor, applied) = try await bootstrapper.run(tables: ["public.t"], isFresh: true)
            await worker.shutdown()
            #expect(hub.afters.count == 2)
            #expect(cursor == 550)
            #expect(applied == 550)
            let missing = try connection.query(
                "SELECT coalesce(string_agg(g::text, ','), '') FROM generate_series(0, 549) g "
                    + "WHERE NOT EXISTS (SELECT 1 FROM public.t WHERE k = g)")[0].string(0)
            #expect(missing == "")
            #expect(try connection.query("SELECT count(*) FROM starling.versions")[0].int64(0) == 550)
        }
    }
}
