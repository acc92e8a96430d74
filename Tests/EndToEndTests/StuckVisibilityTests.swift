import Foundation
import StarlingPostgres
import StarlingTestSupport
import Testing

/// An agent operation that runs for many seconds is visible while it runs: `/v1/status` names it with its
/// start, though the agent's loop is inside it (the status report has its own task and connection).
@Suite(.serialized, .timeLimit(.minutes(3)))
struct StuckVisibilityTests {
    /// r2's table has a user trigger that sleeps 0.4 s per applied row, so applying 25 rows takes ~10 s.
    static let ddl = "CREATE TABLE items (id integer PRIMARY KEY, label text);"
    static let slowDDL = ddl + """
        CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(0.4); RETURN NEW; END $$;
        CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION slow();
        """

    private func busy(_ deployment: Deployment, _ region: String) async throws -> [String: Any]? {
        let (status, json) = try await deployment.admin("GET", "/v1/status")
        guard status == 200, let regions = (json as? [String: Any])?["regions"] as? [[String: Any]] else {
            throw E2EError("GET /v1/status failed with \(status)")
        }
        return regions.first { $0["name"] as? String == region }?["busy"] as? [String: Any]
    }

    @Test func aLongApplyShowsAsBusyInStatusWhileItRuns() async throws {
        // Proves: while r2 applies a slow 25-row batch, /v1/status shows r2 busy with "apply of 25 entries",
        // a start time and a duration past 5 s; once applied, busy is null again.
        let tables = [(name: "public.items", policy: "lww")]
        try await Deployment.with(regions: 2, tables: tables, ddl: Self.ddl, regionDDL: ["r2": Self.slowDDL]) {
            deployment in
            try await deployment.sql("r1") { connection in
                try connection.execute("INSERT INTO items SELECT g, 'bulk' FROM generate_series(1, 25) g")
            }
            var seen: [String: Any] = [:]
            try await waitUntil("r2 is reported busy applying the batch") {
                guard let busy = try await busy(deployment, "r2") else { return false }
                seen = busy
                return true
            }
            let what = seen["what"] as? String ?? ""
            #expect(what.contains("apply of 25 entries"), "\(seen)")
            #expect((seen["seconds"] as? Double ?? 0) >= 5, "\(seen)")
            #expect((seen["since"] as? String)?.hasSuffix("Z") == true, "\(seen)")
            #expect(try await deployment.sql("r2") { try $0.query("SELECT count(*) FROM items")[0].int64(0) } == 0)
            try await deployment.waitForConvergence()
            try await waitUntil("r2 is no longer busy") { try await busy(deployment, "r2") == nil }
        }
    }
}
