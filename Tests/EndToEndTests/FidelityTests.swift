import Foundation
import StarlingPostgres
import StarlingTestSupport
import Testing

/// Values, schemas and operator paths through real hub and agent processes.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct FidelityTests {
    static let typesDDL = """
        CREATE TABLE public.types (
            id bigint PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, num numeric, num30 numeric(40, 10),
            r real, d double precision, t text, vc varchar(20), b bytea, flag boolean, day date,
            ts timestamp, tstz timestamptz, u uuid, j json, jb jsonb, ia int[], ta text[], na numeric[],
            ba bytea[], tsa timestamptz[], i8a bigint[]);
        """

    static let typesRows = """
        INSERT INTO public.types VALUES
        (1, 32767, 2147483647, 9223372036854775807, 123456789012345678901234567890,
         123456789012345678901234567890.0123456789, 'NaN', 'Infinity', E'é ✓ "q" \\\\ \\n tab\\t', 'varchar',
         '\\x00ff10', true, '2024-02-29', '2024-01-01 12:34:56.123456', '2024-06-01 01:02:03.654321+05:30',
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a":[1,2.50,"x"]}', '{"b": {"c": null}, "n": 1.000}',
         '{1,NULL,3}', '{"a b",NULL,"c,d"}', '{1.10,NaN}', '{"\\\\x01ff"}', '{"2024-01-01 00:00:00.000001+00"}',
         '{9223372036854775807}'),
        (2, -32768, -2147483648, -9223372036854775808, 'NaN', -0.0000000001, '-Infinity', 'NaN', '', NULL,
         '\\x', false, '0001-01-01', 'infinity', '-infinity', NULL, '[]', '[]', '{}', '{}', NULL, NULL, '{}',
         '{-9223372036854775808}'),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL);
        """

    /// The rows' text forms, in id order.
    private func rows(_ deployment: Deployment, _ region: String) async throws -> [String] {
        try await deployment.sql(region) { connection in
            try connection.query("SELECT x::text FROM public.types x ORDER BY id").map { try $0.string(0) }
        }
    }

    /// Every listed type (bigint extremes, 30-digit numeric, bytea, arrays, timestamptz µs, json/jsonb,
    /// NaN/Infinity, uuid, date…) arrives identical in the other region, both ways.
    @Test func everyTypeRoundTripsThroughTheHub() async throws {
        try await Deployment.with(regions: 2, tables: [("public.types", "lww")], ddl: Self.typesDDL) { deployment in
            try await deployment.sql("r1") { try $0.executeScript(Self.typesRows) }
            let original = try await rows(deployment, "r1")
            #expect(original.count == 3)
            _ = try? await deployment.waitForConvergence(timeout: .seconds(20))
            let copied = try await rows(deployment, "r2")
            for (a, b) in zip(original, copied) where a != b { Issue.record("r1: \(a)\nr2: \(b)") }
            try #require(copied == original)
            try await deployment.sql("r2") { connection in
                try connection.execute(
                    "UPDATE public.types SET tstz = '1999-12-31 23:59:59.999999+00', num = 0.1, b = '\\xdeadbeef', "
                        + "ia = '{{1,2},{3,4}}' WHERE id = 2")
            }
            try await deployment.waitForConvergence()
            let updated = try await rows(deployment, "r2")
            #expect(updated[1].contains("1999-12-31 23:59:59.999999"))
            #expect(try await rows(deployment, "r1") == updated)
        }
    }

    /// A region whose table differs from the registered shape is refused with the table and column named.
    @Test func schemaMismatchIsRefusedNamingTableAndColumn() async throws {
        let ddl = "CREATE TABLE public.t (k int PRIMARY KEY, v text, w int);"
        let other = "CREATE TABLE public.t (k int PRIMARY KEY, v varchar(10), w int);"
        try await Deployment.with(
            regions: 2, tables: [("public.t", "lww")], ddl: ddl, regionDDL: ["r2": other], startAgents: false
        ) { deployment in
            try await deployment.startAgent("r1")
            let refused = try deployment.launchAgent("r2")
            let status = try await refused.waitForExit(timeout: .seconds(60))
            #expect(status != 0)
            let output = refused.output
            #expect(output.contains("public.t") && output.contains("column v"), "\(output)")
            #expect(output.contains("schema_mismatch"), "\(output)")
        }
    }

    /// `--uninstall` removes triggers and the starling schema and keeps every user row.
    @Test func uninstallKeepsUserData() async throws {
        let ddl = "CREATE TABLE public.t (k int PRIMARY KEY, v text);"
        try await Deployment.with(regions: 2, tables: [("public.t", "lww")], ddl: ddl) { deployment in
            try await deployment.sql("r1") {
                try $0.execute("INSERT INTO public.t SELECT g, 'v' || g FROM generate_series(1, 100) g")
            }
            try await deployment.waitForConvergence()
            try await deployment.killAgent("r2")
            let before = try await deployment.fingerprint("r2", table: "public.t")
            let uninstall = try deployment.launchAgent("r2", extra: ["--uninstall"])
            #expect(try await uninstall.waitForExit(timeout: .seconds(60)) == 0, "\(uninstall.output)")
            #expect(try await deployment.fingerprint("r2", table: "public.t") == before)
            let (schemas, triggers) = try await deployment.sql("r2") { connection in
                let row = try connection.query(
                    "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'starling'), "
                        + "(SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.t'::regclass AND NOT tgisinternal "
                        + "AND tgname NOT LIKE 'e2e_oracle%')"  // the test's own hook (Deployment+Oracle.swift) stays
                )[0]
                return (try row.int64(0), try row.int64(1))
            }
            #expect(schemas == 0 && triggers == 0)
            try await deployment.sql("r2") { try $0.execute("INSERT INTO public.t VALUES (1000, 'after')") }
        }
    }

    /// An entry a region cannot apply (a unique index only it has) becomes a dead letter, reported to the
    /// hub as an open conflict, and the stream goes on.
    @Test func deadLetterBecomesAnOpenConflictAndTheStreamGoesOn() async throws {
        let ddl = "CREATE TABLE public.u (k int PRIMARY KEY, email text);"
        let strict = ddl + " CREATE UNIQUE INDEX u_email ON public.u (email);"
        try await Deployment.with(regions: 2, tables: [("public.u", "lww")], ddl: ddl, regionDDL: ["r2": strict]) {
            deployment in
            try await deployment.sql("r2") { try $0.execute("INSERT INTO public.u VALUES (2, 'a@x')") }
            try await deployment.waitForConvergence()
            try await deployment.sql("r1") { try $0.execute("INSERT INTO public.u VALUES (1, 'a@x')") }
            try await deployment.sql("r1") { try $0.execute("INSERT INTO public.u VALUES (3, 'b@x')") }
            try await waitUntil("r2 applied the entry after the dead letter") {
                try await deployment.sql("r2") { try $0.query("SELECT count(*) FROM public.u WHERE k = 3")[0].int64(0) } == 1
            }
            var open: [[String: Any]] = []
            try await waitUntil("the dead letter is an open conflict at the hub") {
                open = try await deployment.conflicts().filter { $0["status"] as? String == "open" }
                return !open.isEmpty
            }
            let incoming = open.first?["incoming"] as? [String: Any]
            #expect(incoming?["id"] as? String == "r2:dead-letter:1")
            #expect((open.first?["key"] as? [String: Any])?["k"] as? Int == 1)
            let letters = try await deployment.sql("hub") {
                try $0.query("SELECT count(*) FROM starling_hub.dead_letters WHERE region = 'r2'")[0].int64(0)
            }
            #expect(letters == 1)
        }
    }
}
