import StarlingCore
import StarlingHub
import Testing

@Suite(.timeLimit(.minutes(2)))
struct HubConflictTests {
    /// r1 writes key 1 at seq 1; r2 then writes it without having seen it (base 0).
    private func race(_ hub: HubHarness, table: String, r2HLC: Int64) async throws -> JSONValue {
        let first = try await hub.push("r1", [Changes.insert("r1", 1, table: table, id: 1, row: ["qty": 1], hlc: 1000)])
        #expect(first.json["results"]?[0]?["status"] == "accepted")
        let second = try await hub.push(
            "r2", [Changes.insert("r2", 1, table: table, id: 1, row: ["qty": 2], hlc: r2HLC)])
        #expect(second.status == 200)
        return try #require(second.json["results"]?[0])
    }

    private func onlyConflict(_ hub: HubHarness) async throws -> JSONValue {
        let listed = try await hub.admin("GET", "/v1/conflicts?status=all")
        #expect(listed.status == 200)
        let conflicts = try #require(listed.json["conflicts"]?.arrayValue)
        #expect(conflicts.count == 1)
        return try #require(conflicts.first)
    }

    @Test func lwwLetsTheLaterWriteWin() async throws {
        // Proves lww: the higher HLC wins and the conflict is recorded auto with both images.
        try await HubHarness.with { hub in
            let verdict = try await race(hub, table: "public.items", r2HLC: 2000)
            #expect(verdict["status"] == "accepted" && verdict["seq"] == 2)
            let conflict = try await onlyConflict(hub)
            #expect(conflict["policy"] == "lww" && conflict["status"] == "auto" && conflict["winner"] == "incoming")
            #expect(conflict["current"]?["row"]?["qty"] == 1 && conflict["incoming"]?["row"]?["qty"] == 2)
            #expect(conflict["current"]?["origin"] == "r1" && conflict["incoming"]?["id"] == "r2:1")
            #expect(conflict["detected_at"]?.stringValue?.hasSuffix("Z") == true)
            let older = try await hub.push("r3", [Changes.insert("r3", 1, id: 1, row: ["qty": 3], hlc: 1500)])
            let rejected = try #require(older.json["results"]?[0])
            #expect(rejected["status"] == "rejected")
            #expect(rejected["winner"]?["seq"] == 2 && rejected["winner"]?["origin"] == "r2")
            #expect(rejected["winner"]?["row"]?["qty"] == 2)
        }
    }

    @Test func priorityLetsTheHigherRegionWin() async throws {
        // Proves priority: r2 (priority 90) loses to r1 (100) despite its later HLC.
        try await HubHarness.with { hub in
            let verdict = try await race(hub, table: "public.prio", r2HLC: 9000)
            #expect(verdict["status"] == "rejected")
            #expect(verdict["winner"]?["origin"] == "r1" && verdict["winner"]?["seq"] == 1)
            let conflict = try await onlyConflict(hub)
            #expect(conflict["policy"] == "priority" && conflict["winner"] == "current")
        }
    }

    @Test func mergeCombinesColumns() async throws {
        // Proves merge: concurrent updates of different columns combine into a rewritten merge entry.
        try await HubHarness.with { hub in
            let table = "public.merged"
            _ = try await hub.push("r1", [Changes.insert("r1", 1, table: table, id: 1, row: ["a": 1, "b": 1])])
            _ = try await hub.push(
                "r1",
                [
                    Changes.update(
                        "r1", 2, table: table, id: 1, before: ["a": 1, "b": 1], after: ["a": 2, "b": 1], base: 1,
                        hlc: 2000)
                ])
            let pushed = try await hub.push(
                "r2",
                [
                    Changes.update(
                        "r2", 1, table: table, id: 1, before: ["a": 1, "b": 1], after: ["a": 1, "b": 2], base: 1,
                        hlc: 3000)
                ])
            let verdict = try #require(pushed.json["results"]?[0])
            #expect(verdict["status"] == "merged" && verdict["seq"] == 3)
            #expect(verdict["row"] == ["id": 1, "a": 2, "b": 2])
            let pulled = try await hub.pull("r2", after: 2)
            let entry = try #require(pulled.json["entries"]?[0])
            #expect(entry["kind"] == "merge" && entry["rewritten"] == true && entry["origin"] == "r2")
            let conflict = try await onlyConflict(hub)
            #expect(conflict["policy"] == "merge" && conflict["winner"] == "incoming")
        }
    }

    @Test func rejectKeepsTheFirstWriter() async throws {
        // Proves reject: the head stays whatever the HLC, and the loser learns the winner's image.
        try await HubHarness.with { hub in
            let verdict = try await race(hub, table: "public.firsts", r2HLC: 9000)
            #expect(verdict["status"] == "rejected" && verdict["winner"]?["row"]?["qty"] == 1)
            let conflict = try await onlyConflict(hub)
            #expect(conflict["policy"] == "reject" && conflict["status"] == "auto")
        }
    }

    @Test func manualConflictIsOpenUntilResolvedOnce() async throws {
        // Proves manual: the conflict opens, resolving emits a hub resolution entry and an audit record, and a
        // second resolve is refused with 409.
        try await HubHarness.with { hub in
            let verdict = try await race(hub, table: "public.manual", r2HLC: 9000)
            #expect(verdict["status"] == "rejected")
            let open = try await hub.admin("GET", "/v1/conflicts?status=open")
            let conflict = try #require(open.json["conflicts"]?[0])
            #expect(conflict["status"] == "open")
            let id = try #require(conflict["id"]?.int64Value)
            #expect(open.json["next"] == .integer(id))

            let resolved = try await hub.admin("POST", "/v1/conflicts/\(id)/resolve", body: ["pick": "incoming"])
            #expect(resolved.status == 200)
            #expect(resolved.json["conflict"]?["status"] == "resolved")
            let again = try await hub.admin("POST", "/v1/conflicts/\(id)/resolve", body: ["pick": "current"])
            #expect(again.status == 409)
            let missing = try await hub.admin("POST", "/v1/conflicts/999/resolve", body: ["pick": "current"])
            #expect(missing.status == 404)

            let pulled = try await hub.pull("r1", after: 1)
            let entry = try #require(pulled.json["entries"]?[0])
            #expect(entry["kind"] == "resolution" && entry["origin"] == "hub" && entry["rewritten"] == true)
            #expect(entry["row"]?["qty"] == 2)
            let stillOpen = try await hub.admin("GET", "/v1/conflicts?status=open")
            #expect(stillOpen.json["conflicts"]?.arrayValue?.isEmpty == true)
            #expect(try await hub.counts()[4] == 1)

            let status = try await hub.admin("GET", "/v1/status")
            #expect(status.status == 200)
            #expect(status.json["head"] == 2)
            #expect(status.json["conflicts"]?["total"] == 1 && status.json["conflicts"]?["open"] == 0)
            #expect(status.json["regions"]?.arrayValue?.count == 8)
        }
    }
}
