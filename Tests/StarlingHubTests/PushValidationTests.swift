import StarlingCore
import StarlingHTTP2
import Testing

/// Every pushed image is checked against its table's registered shape: an unknown column, a missing key column,
/// a value that is not of its column's type or a key that differs from its image is refused with 400 naming the table, column and change, and nothing
/// of that push is stored.
@Suite(.timeLimit(.minutes(2)))
struct PushValidationTests {
    static let registration: JSONValue = [
        "tables": [
            [
                "name": "public.items",
                "columns": [["name": "id", "type": "bigint"], ["name": "qty", "type": "integer"], ["name": "note", "type": "text"]],
                "key": ["id"],
            ]
        ]
    ]

    private func register(_ hub: HubHarness) async throws {
        let response = try await hub.send(
            "POST", "/v1/tables/register", token: HubHarness.token("r1"), body: Self.registration.serialized())
        #expect(response.status == 200)
    }

    static let refusals: [(String, JSONValue, String)] = [
        (
            "unknown column named like SQL", Changes.insert("r1", 2, id: 2, row: ["qty": 1, "qty; DROP TABLE x": 1]),
            #"column "qty; DROP TABLE x" is not a column of public.items"#
        ),
        (
            "unknown column in before",
            Changes.update("r1", 2, id: 2, before: ["ghost": 1], after: ["qty": 2], base: 0, hlc: 5),
            #"column "ghost" is not a column of public.items"#
        ),
        (
            "key differs from the image",
            [
                "id": "r1:2", "tx": "r1:tx2", "table": "public.items", "op": "insert", "key": ["id": 2],
                "after": ["id": 3, "qty": 1], "base": 0, "hlc": 5,
            ], #"after.id differs from key.id"#
        ),
        (
            "image without its key column",
            [
                "id": "r1:2", "tx": "r1:tx2", "table": "public.items", "op": "insert", "key": ["id": 2],
                "after": ["qty": 1], "base": 0, "hlc": 5,
            ], #"after lacks key column "id""#
        ),
        (
            "text in an integer column", Changes.insert("r1", 2, id: 2, row: ["qty": "abc"]),
            #"column "qty" of public.items is integer: the value "abc" is not a 32-bit integer"#
        ),
        (
            "a fraction in an integer column", Changes.insert("r1", 2, id: 2, row: ["qty": .number("1.5")]),
            #"column "qty" of public.items is integer: the value 1.5 is not a 32-bit integer"#
        ),
        (
            "a number in a text column", Changes.insert("r1", 2, id: 2, row: ["qty": 1, "note": 7]),
            #"column "note" of public.items is text: the value 7 is not a string"#
        ),
        (
            "an integer beyond its column's range",
            Changes.insert("r1", 2, id: 2, row: ["qty": .number("2147483648")]),
            #"column "qty" of public.items is integer: the value 2147483648 is not a 32-bit integer"#
        ),
        (
            "a key value of the wrong type",
            [
                "id": "r1:2", "tx": "r1:tx2", "table": "public.items", "op": "delete", "key": ["id": "two"],
                "before": ["id": "two", "qty": 1], "base": 0, "hlc": 5,
            ], #"column "id" of public.items is bigint: the value "two" is not a 64-bit integer"#
        ),
    ]

    @Test("a table without a primary key is refused at registration, naming the table and the fix")
    func noPrimaryKey() async throws {
        // Proves: a registration with no key columns is refused with 400 no_primary_key naming the table and how
        // to add a key; nothing is registered.
        try await HubHarness.with { hub in
            let body: JSONValue = [
                "tables": [["name": "public.items", "columns": [["name": "id", "type": "bigint"]], "key": []]]
            ]
            let response = try await hub.send(
                "POST", "/v1/tables/register", token: HubHarness.token("r1"), body: body.serialized())
            #expect(response.status == 400)
            let error = response.json["error"]
            #expect(error?["code"]?.stringValue == "no_primary_key")
            let message = error?["message"]?.stringValue ?? ""
            #expect(message.contains("public.items has no primary key") && message.contains("ADD PRIMARY KEY"), "\(message)")
        }
    }

    @Test("a push with one image that does not fit the registered shape is refused whole", arguments: refusals)
    func refusedWhole(name: String, bad: JSONValue, message: String) async throws {
        // Proves: the refusal names the change and the column, a valid change beside it is not stored either,
        // and the same valid change alone is accepted afterwards.
        try await HubHarness.with { hub in
            try await register(hub)
            let good = Changes.insert("r1", 1, id: 1, row: ["qty": 1, "note": "fine"])
            let before = try await hub.counts()
            let refused = try await hub.push("r1", [good, bad])
            #expect(refused.status == 400, "\(name)")
            let text = refused.json["error"]?["message"]?.stringValue ?? ""
            #expect(text.contains("changes[1]") && text.contains(message), "\(text)")
            #expect(try await hub.counts() == before, "\(name): nothing stored")
            let accepted = try await hub.push("r1", [good])
            #expect(accepted.status == 200 && accepted.json["results"]?[0]?["status"] == "accepted")
        }
    }
}
