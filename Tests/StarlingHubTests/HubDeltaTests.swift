import Logging
import StarlingCore
import StarlingHub
import StarlingTestSupport
import Testing

/// Delta columns at a real hub: registration refuses a column that cannot be a counter, and concurrent
/// increments pushed by two regions both count in the merged row the hub sends back.
@Suite(.timeLimit(.minutes(2)))
struct HubDeltaTests {
    static let tables: [HubConfiguration.Table] = [
        .init(name: "public.stock", policy: "lww", delta: ["qty", "amount"])
    ]

    static func registration(qtyType: String = "integer", key: String = "id") -> JSONValue {
        [
            "tables": [
                [
                    "name": "public.stock",
                    "columns": [
                        ["name": "id", "type": "bigint"], ["name": "qty", "type": .string(qtyType)],
                        ["name": "amount", "type": "numeric(12,2)"], ["name": "note", "type": "text"],
                    ],
                    "key": [.string(key)],
                ]
            ]
        ]
    }

    static let refusals: [(String, String, String)] = [
        ("double precision", "id", "delta column qty is double precision; a delta column must be smallint"),
        ("text", "id", "delta column qty is text"),
        ("integer", "qty", "delta column qty is part of the primary key"),
    ]

    // Proves a registration naming a delta column of an inexact type (or a key column) is refused with 409
    // `invalid_delta_column` naming the table and column, and the table's shape is not stored.
    @Test(arguments: refusals)
    func registrationRefused(type: String, key: String, message: String) async throws {
        try await HubHarness.with(tables: Self.tables) { hub in
            let response = try await hub.send(
                "POST", "/v1/tables/register", token: HubHarness.token("r1"),
                body: Self.registration(qtyType: type, key: key).serialized())
            #expect(response.status == 409)
            #expect(response.json["error"]?["code"]?.stringValue == "invalid_delta_column")
            let text = response.json["error"]?["message"]?.stringValue ?? ""
            #expect(text.contains("table public.stock") && text.contains(message), "\(text)")
        }
    }

    // Proves a hub restarted with a delta column whose registered type is not exact refuses to start, naming
    // the key, while the same database with a valid delta list starts.
    @Test func restartWithAnInexactDeltaColumnIsRefused() async throws {
        try await TestDatabase.with { database in
            let plain = HubHarness.configuration(database: database.url, tables: [.init(name: "public.stock")])
            try await HubHarness.run(plain, on: database) { hub in
                let registered = try await hub.send(
                    "POST", "/v1/tables/register", token: HubHarness.token("r1"),
                    body: Self.registration(qtyType: "real").serialized())
                #expect(registered.status == 200)
            }
            let refused = HubHarness.configuration(
                database: database.url, tables: [.init(name: "public.stock", delta: ["amount", "qty"])])
            let hub = try Hub(configuration: refused, logger: Logger(label: "test.hub"))
            await #expect {
                try await hub.start()
            } throws: { error in
                let error = error as? HubError
                return error?.key == "tables[0].delta[1]" && error?.message.contains("qty is real") == true
            }
            // The CLI stops a hub whose start failed: that must return (the server never started).
            await hub.shutdown(gracePeriod: .seconds(1))
            let valid = HubHarness.configuration(
                database: database.url, tables: [.init(name: "public.stock", delta: ["amount"])])
            try await HubHarness.run(valid, on: database) { _ in }
        }
    }

    // Proves two regions incrementing the same counters from the same version both count: the second push is
    // merged to head + (after − before) for the integer and the numeric column, and rewritten for its origin.
    @Test func concurrentIncrementsMerge() async throws {
        try await HubHarness.with(tables: Self.tables) { hub in
            let registered = try await hub.send(
                "POST", "/v1/tables/register", token: HubHarness.token("r1"), body: Self.registration().serialized())
            #expect(registered.status == 200)
            let start: JSONObject = ["qty": 10, "amount": .string("1.50"), "note": "a"]
            let inserted = try await hub.push("r1", [Changes.insert("r1", 1, table: "public.stock", id: 1, row: start)])
            #expect(inserted.json["results"]?[0]?["seq"] == 1)
            let first = try await hub.push(
                "r1",
                [
                    Changes.update(
                        "r1", 2, table: "public.stock", id: 1, before: start,
                        after: ["qty": 15, "amount": .string("2.00"), "note": "a"], base: 1, hlc: 2000)
                ])
            #expect(first.json["results"]?[0]?["status"] == "accepted")
            let second = try await hub.push(
                "r2",
                [
                    Changes.update(
                        "r2", 1, table: "public.stock", id: 1, before: start,
                        after: ["qty": 7, "amount": .string("0.25"), "note": "b"], base: 1, hlc: 3000)
                ])
            let verdict = second.json["results"]?[0]
            #expect(verdict?["status"] == "merged", "\(second.json)")
            // qty 15 + (7 − 10) = 12; amount 2.00 + (0.25 − 1.50) = 0.75; note by lww (r2 is newer).
            #expect(verdict?["row"] == ["id": 1, "qty": 12, "amount": .string("0.75"), "note": "b"])
        }
    }
}
