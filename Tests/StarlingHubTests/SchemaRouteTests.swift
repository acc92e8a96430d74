import StarlingCore
import StarlingHub
import StarlingHTTP2
import Testing

/// The hub's schema-change routes against a real hub and database: what a region may push (column actions only,
/// type names only), a region's change found among earlier versions, retries by id, delta columns kept, and
/// pushed images read under the shape in force with the heads rewritten.
@Suite(.timeLimit(.minutes(2)))
struct SchemaRouteTests {
    /// Registers public.items (id bigint key, qty integer, note text), the shape PushValidationTests uses.
    private func register(_ hub: HubHarness) async throws {
        let response = try await hub.send(
            "POST", "/v1/tables/register", token: HubHarness.token("r1"),
            body: PushValidationTests.registration.serialized())
        #expect(response.status == 200)
    }

    private func captured(_ hub: HubHarness, _ body: JSONValue) async throws -> (status: Int, json: JSONValue) {
        try await hub.send("POST", "/v1/tables/schema", token: HubHarness.token("r2"), body: body.serialized())
    }

    private func columns(_ names: [(String, String)]) -> JSONValue {
        .array(names.map { ["name": .string($0.0), "type": .string($0.1)] })
    }

    // Proves a region cannot make the hub or the other regions run text of its choosing: an index action, a type
    // that is not a type name, a default that is not a literal are refused with 400, and nothing is logged.
    @Test func regionsPushColumnActionsOnly() async throws {
        try await HubHarness.with { hub in
            try await register(hub)
            let base: [(String, String)] = [("id", "bigint"), ("qty", "integer"), ("note", "text")]
            let refusals: [(JSONValue, JSONValue, String)] = [
                (["action": "index", "statement": "DROP TABLE public.accounts"], columns(base), "index change"),
                (
                    ["action": "add_column", "name": "x", "type": "text DEFAULT now()", "not_null": false],
                    columns(base + [("x", "text DEFAULT now()")]), "not a type name"
                ),
                (
                    [
                        "action": "add_column", "name": "x", "type": "text", "not_null": false,
                        "default": "''::text, (select string_agg(token, ',') from starling_hub.regions)",
                    ], columns(base + [("x", "text")]), "not a constant"
                ),
            ]
            for (action, resulting, phrase) in refusals {
                let answer = try await captured(
                    hub, ["id": "r2:7", "table": "public.items", "actions": [action], "columns": resulting])
                #expect(answer.status == 400, "\(action)")
                #expect(answer.json["error"]?["message"]?.stringValue?.contains(phrase) == true, "\(answer.json)")
            }
            let logged = try await hub.admin("GET", "/v1/status")
            #expect(logged.json["head"] == 0)
        }
    }

    // Proves the hub reads a pushed image under the shape in force (a renamed column's old name, a dropped
    // column, an added column's default) and rewrote the heads of the table when it sequenced the changes.
    @Test func imagesAndHeadsTakeTheShapeInForce() async throws {
        try await HubHarness.with { hub in
            try await register(hub)
            #expect(try await hub.push("r1", [Changes.insert("r1", 1, id: 1, row: ["qty": 5, "note": "a"])]).status == 200)
            for statement in [
                "ALTER TABLE public.items ADD COLUMN stock integer NOT NULL DEFAULT 7",
                "RENAME COLUMN qty TO amount", "DROP COLUMN note",
            ] {
                let answer = try await hub.admin("POST", "/v1/schema", body: ["table": "public.items", "statement": .string(statement)])
                #expect(answer.status == 200, "\(statement): \(answer.json)")
            }
            // Captured before the region applied them: old names, no stock.
            let pushed = try await hub.push("r2", [Changes.insert("r2", 1, id: 2, row: ["qty": 3, "note": "b"])])
            #expect(pushed.status == 200, "\(pushed.json)")
            let pulled = try await hub.pull("r3", after: 0)
            let rows = (pulled.json["entries"]?.arrayValue ?? []).filter { $0["kind"] == "change" }.map { $0["row"] }
            #expect(rows.last == ["id": 2, "amount": 3, "stock": 7])
            let heads = try await hub.admin("GET", "/v1/rows/public.items?key=%7B%22id%22%3A1%7D")
            #expect(heads.json["head"]?["row"] == ["id": 1, "amount": 5, "stock": 7], "\(heads.json)")
        }
    }

    // Proves a region's change that the hub has as an earlier version (a migration's first statement run after
    // the hub has its second) is answered with that version, not refused; a change of no known version is a
    // 409 naming both shapes; an admin retry by id gets its first answer; a delta column cannot change.
    @Test func earlierVersionsRetriesAndDeltaColumns() async throws {
        let tables: [HubConfiguration.Table] = [.init(name: "public.items", policy: "lww", delta: ["qty"])]
        try await HubHarness.with(tables: tables) { hub in
            try await register(hub)
            let first = try await hub.admin(
                "POST", "/v1/schema", body: ["table": "public.items", "statement": "ADD COLUMN a text", "id": "m1"])
            #expect(first.status == 200 && first.json["version"] == 2)
            let second = try await hub.admin(
                "POST", "/v1/schema", body: ["table": "public.items", "statement": "ADD COLUMN b text", "id": "m2"])
            #expect(second.status == 200 && second.json["version"] == 3)
            let retry = try await hub.admin(
                "POST", "/v1/schema", body: ["table": "public.items", "statement": "ADD COLUMN a text", "id": "m1"])
            #expect(retry.status == 200 && retry.json["seq"] == first.json["seq"] && retry.json["new"] == false)

            let lagging = try await captured(
                hub,
                [
                    "id": "r2:9", "table": "public.items",
                    "actions": [["action": "add_column", "name": "a", "type": "text", "not_null": false]],
                    "columns": columns([("id", "bigint"), ("qty", "integer"), ("note", "text"), ("a", "text")]),
                ])
            #expect(lagging.status == 200 && lagging.json["seq"] == first.json["seq"] && lagging.json["new"] == false)
            let conflicting = try await captured(
                hub,
                [
                    "id": "r2:10", "table": "public.items",
                    "actions": [["action": "add_column", "name": "c", "type": "integer", "not_null": false]],
                    "columns": columns([("id", "bigint"), ("qty", "integer"), ("note", "text"), ("c", "integer")]),
                ])
            #expect(conflicting.status == 409 && conflicting.json["error"]?["code"] == "schema_conflict")
            // Actions that cannot apply to the shape in force (the column exists there with another type): the same
            // refusal, naming both shapes (it said only "column a exists already").
            let clashing = try await captured(
                hub,
                [
                    "id": "r2:11", "table": "public.items",
                    "actions": [["action": "add_column", "name": "a", "type": "integer", "not_null": false]],
                    "columns": columns([("id", "bigint"), ("qty", "integer"), ("note", "text"), ("a", "integer")]),
                ])
            let clash = clashing.json["error"]?["message"]?.stringValue ?? ""
            #expect(clashing.status == 409 && clashing.json["error"]?["code"] == "schema_conflict")
            #expect(
                clash.contains("column a exists already")
                    && clash.contains("version 3 in force (id bigint, qty integer, note text, a text, b text)")
                    && clash.contains("would be (id bigint, qty integer, note text, a integer)"), "\(clash)")

            let delta = try await hub.admin(
                "POST", "/v1/schema", body: ["table": "public.items", "statement": "ALTER COLUMN qty TYPE bigint"])
            #expect(delta.status == 400 && delta.json["error"]?["message"]?.stringValue?.contains("delta column") == true)
            let using = try await hub.admin(
                "POST", "/v1/schema",
                body: ["table": "public.items", "statement": "ALTER COLUMN note TYPE text USING upper(note)"])
            #expect(using.status == 400 && using.json["error"]?["message"]?.stringValue?.contains("USING") == true)
        }
    }

    // Proves reconciliation skips, not repairs, the keys of a region that has not applied a table's last schema
    // change yet (the hub's heads have the new shape, the region's rows the old one): region r2 answers as a region
    // whose cursor is before the change and which holds none of the rows.
    @Test func reconciliationSkipsARegionBehindASchemaChange() async throws {
        try await HubHarness.with(tables: [.init(name: "public.items", policy: "lww")]) { hub in
            try await register(hub)
            for id in 1...3 {
                #expect(try await hub.push("r1", [Changes.insert("r1", id, id: Int64(id), row: ["qty": 1])]).status == 200)
            }
            let change = try await hub.admin("POST", "/v1/schema", body: ["table": "public.items", "statement": "ADD COLUMN x text"])
            #expect(change.json["seq"] == 4)
            let run = try await hub.admin("POST", "/v1/reconcile", body: [:])
            #expect(run.status == 200)
            var answered = 0
            while answered < 20 {
                let task = try await hub.send("GET", "/v1/reconcile/task", token: HubHarness.token("r2"))
                guard let current = task.json["task"], current != .null else { break }
                let decoded = try ReconcileTask(json: current)
                let answer = ReconcileAnswer(
                    run: decoded.run, table: decoded.table, step: decoded.step, cursor: 3, listsKeys: decoded.listsKeys)
                let sent = try await hub.send(
                    "POST", "/v1/reconcile/answer", token: HubHarness.token("r2"), body: answer.json.serialized())
                #expect(sent.status == 200, "\(sent.json)")
                answered += 1
            }
            let report = try await hub.admin("GET", "/v1/reconcile/latest")
            let r2 = (report.json["results"]?.arrayValue ?? []).first {
                $0["region"] == "r2" && $0["table"] == "public.items"
            }
            #expect(r2?["rows_repaired"] == 0, "\(report.json)")
            #expect(r2?["rows_skipped"] == 3, "\(report.json)")
        }
    }
}
