@testable import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Synchronization
import Testing

/// A ``HubLink`` that forwards every call to a real link and records the `after` of each snapshot request:
/// a spy on the traffic, not a hub double (every answer is the real hub's).
final class SnapshotRecordingLink: HubLink {
    private let link: any HubLink
    private let requests = Mutex<[String?]>([])

    init(_ link: any HubLink) { self.link = link }

    /// The `after` of every snapshot request, in order.
    var afters: [String?] { requests.withLock { $0 } }

    func config() async throws(AgentError) -> HubConfig { try await link.config() }
    func register(_ tables: [TableShape]) async throws(AgentError) { try await link.register(tables) }
    func push(_ changes: [Change]) async throws(AgentError) -> [Verdict] { try await link.push(changes) }
    func pull(after: Int64, limit: Int, waitMs: Int) async throws(AgentError) -> PullPage {
        try await link.pull(after: after, limit: limit, waitMs: waitMs)
    }
    func reportStatus(_ status: AgentStatus) async throws(AgentError) { try await link.reportStatus(status) }
    func reportDeadLetters(_ letters: [DeadLetter]) async throws(AgentError) {
        try await link.reportDeadLetters(letters)
    }
    func snapshot(table: String, after: String?, limit: Int) async throws(AgentError) -> SnapshotPage {
        requests.withLock { $0.append(after) }
        return try await link.snapshot(table: table, after: after, limit: limit)
    }
    func adopt(table: String, rows: Int64) async throws(AgentError) { try await link.adopt(table: table, rows: rows) }
    func reconcileTask() async throws(AgentError) -> ReconcileTask? { try await link.reconcileTask() }
    func reconcileAnswer(_ answer: ReconcileAnswer) async throws(AgentError) -> ReconcileTask? {
        try await link.reconcileAnswer(answer)
    }
}

/// Bootstrap of a real region database from the real hub's snapshot.
@Suite(.timeLimit(.minutes(3)))
struct BootstrapperTests {
    @Test func everyHeadIsLoadedWhenKeyTextOrderDiffersFromKeyOrder() async throws {
        // Proves an empty region loads every head when pages end where the hub's bytewise key-text order
        // ({"id":54} < {"id":5}) and the region's jsonb key order (5 < 54) disagree: no key is skipped.
        try await AgentCluster.with(regions: ["r3"]) { cluster in
            let r3 = cluster["r3"]
            var configuration = AgentConfiguration(
                region: "r3", hub: cluster.hub.url, token: InProcessHub.token("r3"), database: r3.database.url)
            configuration.tuning.requestTimeoutMs = 30_000
            let link = try HTTPHubLink(configuration: configuration)
            let worker = PostgresWorker(url: r3.database.url)
            do {
                try await Self.load(cluster, link: link, worker: worker)
            } catch {
                await worker.shutdown()
                link.shutdown()
                throw error
            }
            await worker.shutdown()
            link.shutdown()
        }
    }

    private static func load(_ cluster: AgentCluster, link: HTTPHubLink, worker: PostgresWorker) async throws {
        let r3 = cluster["r3"]
        let shape = try await r3.sql { connection in
            try AgentTestSupport.install(tables: ["public.items"], connection: connection)
            return try TableShape.load(table: "public.items", connection: connection)
        }
        try await link.register([shape])
        // 550 heads, seq 1…550, written by r1.
        let changes: [JSONValue] = (0..<550).map { id in
            [
                "id": .string("r1:\(id + 1)"), "tx": .string("r1:\(id + 1)"), "table": "public.items", "op": "insert",
                "key": ["id": .integer(Int64(id))],
                "after": ["id": .integer(Int64(id)), "qty": .integer(Int64(id)), "note": .string("v\(id)")],
                "base": 0, "hlc": .integer(1_000_000 + Int64(id)),
            ]
        }
        let verdicts = try await cluster.hub.push("r1", changes)
        #expect(verdicts.count == 550 && verdicts.last?["seq"] == 550)

        let recording = SnapshotRecordingLink(link)
        let bootstrapper = Bootstrapper(
            region: "r3", hub: recording, database: worker, store: AgentStore(region: "r3"), replaceLocal: false,
            pageLimit: 500)
        let (cursor, applied, _) = try await bootstrapper.run(tables: ["public.items"], isFresh: true)
        #expect(recording.afters.count == 2)
        #expect(cursor == 550)
        #expect(applied == 550)
        let missing = try await r3.text(
            "SELECT coalesce(string_agg(g::text, ','), '') FROM generate_series(0, 549) g "
                + "WHERE NOT EXISTS (SELECT 1 FROM items WHERE id = g)")
        #expect(missing == "")
        #expect(try await r3.int("SELECT count(*) FROM starling.versions") == 550)
    }
}
