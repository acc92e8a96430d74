import StarlingCore
import Testing

/// Tests of the captured-change wire type: decoding, validation errors naming the field, encoding.
struct ChangeTests {
    static let update = #"""
        {"id":"eu-west:1842","tx":"eu-west:90211","table":"public.items","op":"update","key":{"id":42},
         "before":{"id":42,"qty":1,"big":"12345678901234567890.000000001"},
         "after":{"id":42,"qty":2,"big":"12345678901234567890.000000001"},"base":1234,"hlc":1764000000123456}
        """#

    // Proves the DESIGN.md example decodes with every field and the region derived from the id.
    @Test func decodesDesignExample() throws {
        let change = try Change(json: JSONValue(parsing: Self.update))
        #expect(change.id == "eu-west:1842")
        #expect(change.region == "eu-west")
        #expect(change.tx == "eu-west:90211")
        #expect(change.table == "public.items")
        #expect(change.op == .update)
        #expect(change.key == ["id": 42])
        #expect(change.before?["qty"] == 1)
        #expect(change.after?["qty"] == 2)
        #expect(change.after?["big"] == "12345678901234567890.000000001")
        #expect(change.base == 1234)
        #expect(change.hlc == 1_764_000_000_123_456)
        #expect(change.image == change.after)
    }

    // Proves the request-body writer gives the same JSON value as `json`, with and without the optional members.
    @Test func writtenBodyIsTheJSONValue() throws {
        let update = try Change(json: JSONValue(parsing: Self.update))
        let delete = try Change(
            json: JSONValue(
                parsing: #"{"id":"r1:7","tx":"r1:7","table":"t","op":"delete","key":{"a":"x\"y","b":2},"#
                    + #""before":{"a":"x\"y","b":2,"c":null},"base":0,"hlc":5,"reassert":3}"#))
        for change in [update, delete] {
            var bytes: [UInt8] = []
            change.writeJSON(to: &bytes)
            #expect(try JSONParser().parse(bytes) == change.json)
        }
    }

    // Proves json → Change → json is the identity on the canonical bytes.
    @Test func roundTrips() throws {
        let value = try JSONValue(parsing: Self.update)
        let change = try Change(json: value)
        #expect(change.json.serialized() == value.serialized())
        #expect(try Change(json: change.json) == change)
    }

    // Proves base and hlc also arrive as decimal strings (lossless bigint form) and null images are absent.
    @Test func acceptsStringIntegersAndNullImages() throws {
        let change = try Change(
            json: JSONValue(
                parsing: #"""
                    {"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{"k":"a"},"before":null,
                     "after":{"k":"a"},"base":"0","hlc":"9007199254740993"}
                    """#))
        #expect(change.before == nil)
        #expect(change.hlc == 9_007_199_254_740_993)
        #expect(change.json["before"] == nil)
    }

    static let invalid: [(String, String, CoreError.Code)] = [
        // (mutation applied to a valid insert as JSON text, expected field, code)
        (#"[1]"#, "", .invalidChange),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{"k":1},"after":{"k":1},"base":0}"#, "hlc",
            .invalidChange
        ),
        (
            #"{"id":"r1","tx":"r:1","table":"t","op":"insert","key":{"k":1},"after":{"k":1},"base":0,"hlc":1}"#, "id",
            .invalidChange
        ),
        (
            #"{"id":":1","tx":"r:1","table":"t","op":"insert","key":{"k":1},"after":{"k":1},"base":0,"hlc":1}"#, "id",
            .invalidChange
        ),
        (
            #"{"id":"r:x","tx":"r:1","table":"t","op":"insert","key":{"k":1},"after":{"k":1},"base":0,"hlc":1}"#, "id",
            .invalidChange
        ),
        (
            #"{"id":"r:-1","tx":"r:1","table":"t","op":"insert","key":{"k":1},"after":{"k":1},"base":0,"hlc":1}"#, "id",
            .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"","table":"t","op":"insert","key":{"k":1},"after":{"k":1},"base":0,"hlc":1}"#, "tx",
            .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":7,"op":"insert","key":{"k":1},"after":{"k":1},"base":0,"hlc":1}"#, "table",
            .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"upsert","key":{"k":1},"after":{"k":1},"base":0,"hlc":1}"#, "op",
            .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{},"after":{"k":1},"base":0,"hlc":1}"#, "key",
            .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"insert","key":[1],"after":{"k":1},"base":0,"hlc":1}"#, "key",
            .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{"k":null},"after":{"k":null},"base":0,"hlc":1}"#,
            "key.k", .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{"k":{}},"after":{"k":{}},"base":0,"hlc":1}"#,
            "key.k", .invalidChange
        ),
        (#"{"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{"k":1},"base":0,"hlc":1}"#, "after", .invalidChange),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{"k":1},"before":{"k":1},"after":{"k":1},"base":0,"hlc":1}"#,
            "before", .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"update","key":{"k":1},"after":{"k":1},"base":0,"hlc":1}"#,
            "before", .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"update","key":{"k":1},"before":{"k":1},"base":0,"hlc":1}"#,
            "after", .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"delete","key":{"k":1},"before":{"k":1},"after":{"k":1},"base":0,"hlc":1}"#,
            "after", .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"delete","key":{"k":1},"base":0,"hlc":1}"#, "before",
            .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{"k":1},"after":{"k":2},"base":0,"hlc":1}"#,
            "after.k", .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{"k":1},"after":{"j":1},"base":0,"hlc":1}"#,
            "after.k", .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"update","key":{"k":1},"before":{"k":1},"after":{"k":2},"base":0,"hlc":1}"#,
            "after.k", .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{"k":1},"after":{"k":"1"},"base":0,"hlc":1}"#,
            "after.k", .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{"k":1},"after":{"k":1},"base":-1,"hlc":1}"#,
            "base", .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{"k":1},"after":{"k":1},"base":1.5,"hlc":1}"#,
            "base", .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{"k":1},"after":{"k":1},"base":0,"hlc":-5}"#,
            "hlc", .invalidChange
        ),
        (
            #"{"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{"k":1},"after":7,"base":0,"hlc":1}"#, "after",
            .invalidChange
        ),
    ]

    // Proves each broken rule is refused with `.invalidChange` naming the offending field.
    @Test(arguments: invalid)
    func refusesInvalid(text: String, field: String, code: CoreError.Code) throws {
        let value = try JSONValue(parsing: text)
        do {
            _ = try Change(json: value)
            Issue.record("accepted an invalid change")
        } catch {
            #expect(error.code == code)
            #expect((error.field ?? "") == field, "\(error)")
        }
    }

    // Proves the hub's region check refuses a change of another region with `.forbiddenRegion`.
    @Test func requiredRegion() throws {
        let value = try JSONValue(parsing: Self.update)
        #expect(throws: Never.self) { try Change(json: value, requiredRegion: "eu-west") }
        #expect { try Change(json: value, requiredRegion: "us-east") } throws: {
            ($0 as? CoreError)?.code == .forbiddenRegion
        }
    }

    // Proves the key must name exactly the table's key columns, in any order.
    @Test func keyColumns() throws {
        let value = try JSONValue(
            parsing: #"""
                {"id":"r:1","tx":"r:1","table":"t","op":"insert","key":{"a":1,"b":"x"},"after":{"a":1,"b":"x","c":null},
                 "base":0,"hlc":1}
                """#)
        #expect(throws: Never.self) { try Change(json: value, keyColumns: ["b", "a"]) }
        for columns in [["a"], ["a", "b", "c"], ["a", "c"], []] {
            #expect { try Change(json: value, keyColumns: columns) } throws: {
                ($0 as? CoreError)?.field == "key"
            }
        }
    }

    // Proves ids split at the last colon, so region names may contain colons.
    @Test func regionFromID() throws {
        let change = try Change(
            id: "aws:eu-west-1:77", tx: "t", table: "t", op: .delete, key: ["k": 1], before: ["k": 1], after: nil,
            base: 3, hlc: 4)
        #expect(change.region == "aws:eu-west-1")
        #expect(try Change.region(ofID: "r1:0") == "r1")
        #expect(try Change.region(ofID: "r1:9223372036854775807") == "r1")
        for bad in ["r1:", ":5", "r1:-5", "r1:05", "r1:5x", "r1: 5", "r1:9223372036854775808", "r15", ""] {
            #expect(throws: CoreError.self, "\(bad)") { try Change.region(ofID: bad) }
        }
    }

    // Proves an error can be prefixed with the caller's position in the batch.
    @Test func errorPrefix() {
        let error = CoreError(code: .invalidChange, message: "m", field: "key.id")
        #expect(error.prefixed(with: "changes[3]").field == "changes[3].key.id")
        #expect(CoreError(code: .invalidChange, message: "m").prefixed(with: "changes[0]").field == "changes[0]")
    }
}
