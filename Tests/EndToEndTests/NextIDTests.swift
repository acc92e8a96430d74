import Foundation
import StarlingPostgres
import StarlingTestSupport
import Testing

/// `starling.next_id()`: ids taken concurrently in eight regions never collide, and each
/// carries its region's id (hub.yaml `regions[].id`, which Deployment sets to the region's 1-based position).
@Suite(.serialized, .timeLimit(.minutes(3)))
struct NextIDTests {
    static let regions = 8
    /// Inserts per client; four clients per region, all regions at once.
    static let transactions = 150
    static let clients = 4
    static let tables: [(name: String, policy: String)] = [("public.events", "lww")]
    static let ddl = "CREATE TABLE public.events (id bigint PRIMARY KEY, region text NOT NULL, at timestamptz);"

    // Proves: 8 regions × 4 concurrent clients inserting with starling.next_id() produce ids that are unique
    // across all regions (every row arrives everywhere, no insert-insert conflict at the hub), with the
    // region's id in bits 12-21 and a time in bits 22-62 close to now.
    @Test func idsAreUniqueAcrossEightRegions() async throws {
        try await Deployment.with(regions: Self.regions, tables: Self.tables, ddl: Self.ddl) { deployment in
            var runs: [(String, ChildProcess)] = []
            for region in deployment.regions {
                let url = try #require(deployment.regionDatabases[region]?.url)
                let script = deployment.directory.appendingPathComponent("insert-\(region).sql")
                try "INSERT INTO public.events (id, region, at) VALUES (starling.next_id(), '\(region)', now());\n"
                    .write(to: script, atomically: true, encoding: .utf8)
                runs.append(
                    (region, try ChildProcess.launch(
                        DeltaPgbenchTests.pgbench,
                        ["-n", "-f", script.path, "-c", "\(Self.clients)", "-j", "2", "-t", "\(Self.transactions)",
                         url])))
            }
            for (region, run) in runs {
                let status = try await run.waitForExit(timeout: .seconds(60))
                #expect(status == 0, "pgbench in \(region): \(run.output)")
            }
            try await deployment.waitForConvergence(timeout: .seconds(90))
            let perRegion = Int64(Self.clients * Self.transactions)
            for (index, region) in deployment.regions.enumerated() {
                let (rows, badRegionBits, badTime) = try await deployment.sql(region) { connection in
                    let row = try connection.query(
                        "SELECT count(*), "
                            + "count(*) FILTER (WHERE ((id >> 12) & 1023) <> substr(region, 2)::int), "
                            + "count(*) FILTER (WHERE abs((id >> 22) + 1767225600000 "
                            + "- floor(extract(epoch FROM at) * 1000)::bigint) > 60000) FROM public.events")[0]
                    return (try row.int64(0), try row.int64(1), try row.int64(2))
                }
                #expect(rows == perRegion * Int64(Self.regions), "\(region) (#\(index + 1)) holds \(rows) rows")
                #expect(badRegionBits == 0, "\(region): ids whose region bits are not their origin's id")
                #expect(badTime == 0, "\(region): ids whose time bits are not their insert time")
            }
            let conflicts = try await deployment.conflicts()
            #expect(conflicts.isEmpty, "an id collided: \(conflicts.prefix(3))")

            // A region without an id (hub.yaml has none for it) gets an error naming the fix, not an id.
            let refusal = try await deployment.sql("r1") { connection -> String in
                try connection.execute("UPDATE starling.state SET region_id = NULL")
                do {
                    _ = try connection.query("SELECT starling.next_id()")
                    return "no error"
                } catch {
                    return "\(error)"
                }
            }
            #expect(refusal.contains("this region has no id"), "\(refusal)")
        }
    }
}
