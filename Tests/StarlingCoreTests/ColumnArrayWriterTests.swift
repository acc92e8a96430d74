import StarlingCore
import Testing

/// ``ColumnArrayWriter``: rows given as JSON text or as objects become one PostgreSQL array literal per column, each
/// element the text `jsonb_populate_record` would give the column's input function; anything else is refused.
@Suite("Column arrays")
struct ColumnArrayWriterTests {
    static func arrays(_ rows: [String], columns: [String] = ["id", "name", "qty"]) -> [String]? {
        var writer = ColumnArrayWriter(columns: columns)
        for row in rows { guard writer.append(json: Array(row.utf8)) else { return nil } }
        return writer.finish()
    }

    static func arrays(objects rows: [JSONObject], columns: [String] = ["id", "name", "qty"]) -> [String]? {
        var writer = ColumnArrayWriter(columns: columns)
        for row in rows { guard writer.append(row: row) else { return nil } }
        return writer.finish()
    }

    @Test("scalars become quoted elements in column order; null and absent members are NULL; others are skipped")
    func scalars() throws {
        let rows = [
            #"{"id":1,"name":"a","qty":-2.5e3}"#,
            #" { "qty" : null , "id" : 2 , "other" : {"x":[1,{"y":"\""}]} } "#,
            #"{"name":"b","id":"3","flag":true}"#,
        ]
        #expect(Self.arrays(rows) == [#"{"1","2","3"}"#, #"{"a",NULL,"b"}"#, #"{"-2.5e3",NULL,NULL}"#])
        #expect(Self.arrays([#"{"id":true,"name":false}"#]) == [#"{"true"}"#, #"{"false"}"#, "{NULL}"])
        #expect(Self.arrays(["{}"]) == ["{NULL}", "{NULL}", "{NULL}"])
        #expect(Self.arrays([]) == ["{}", "{}", "{}"])
    }

    @Test("a string's escapes: quote and backslash kept as the array's escapes, the others decoded and quoted again")
    func escapes() throws {
        let rows = [
            #"{"id":1,"name":"say \"hi\" \\ there"}"#,
            #"{"id":2,"name":"line\nbreak\ttab \u00e9 \ud83d\ude00 \/"}"#,
            #"{"id":3,"name":"{a,b} NULL"}"#,
            #"{"id":4,"name":""}"#,
        ]
        let arrays = try #require(Self.arrays(rows))
        #expect(arrays[1] == "{\"say \\\"hi\\\" \\\\ there\",\"line\nbreak\ttab é 😀 /\",\"{a,b} NULL\",\"\"}")
        // The same rows as objects give the same text.
        let objects: [JSONObject] = [
            ["id": .integer(1), "name": .string(#"say "hi" \ there"#)],
            ["id": .integer(2), "name": .string("line\nbreak\ttab é 😀 /")],
            ["id": .integer(3), "name": .string("{a,b} NULL")],
            ["id": .integer(4), "name": .string("")],
        ]
        #expect(Self.arrays(objects: objects) == arrays)
    }

    @Test("members in another order from row to row are still matched to their columns")
    func memberOrder() throws {
        let rows = [
            #"{"id":1,"name":"a","qty":1}"#, #"{"qty":2,"id":2,"name":"b"}"#, #"{"extra":0,"name":"c","id":3}"#,
            #"{"id":4,"name":"d","qty":4}"#, #"{"i\u0064":5,"name":"e"}"#,
        ]
        #expect(
            Self.arrays(rows) == [
                #"{"1","2","3","4","5"}"#, #"{"a","b","c","d","e"}"#, #"{"1","2",NULL,"4",NULL}"#,
            ])
    }

    @Test("objects, arrays, U+0000, duplicates and malformed text are refused")
    func refusals() {
        #expect(Self.arrays([#"{"id":1,"name":{"a":1}}"#]) == nil)
        #expect(Self.arrays([#"{"id":[1,2]}"#]) == nil)
        #expect(Self.arrays([#"{"id":1,"name":"a\u0000b"}"#]) == nil)
        #expect(Self.arrays([#"{"id":1,"id":2}"#]) == nil)
        #expect(Self.arrays([#"[1,2]"#]) == nil)
        #expect(Self.arrays([#"{"id":1"#]) == nil)
        #expect(Self.arrays([#"{"id":1} x"#]) == nil)
        #expect(Self.arrays([#"{"id":nul}"#]) == nil)
        #expect(Self.arrays([#"{"id":1.}"#]) == nil, "numbers are read by the JSON grammar")
        #expect(Self.arrays([#"{"id":01}"#]) == nil)
        #expect(Self.arrays([#"{"id":"abc}"#]) == nil)
        #expect(Self.arrays(objects: [["name": .array([])]]) == nil)
        #expect(Self.arrays(objects: [["name": .string("a\u{0}")]]) == nil)
        // An object for a column that is not written is skipped, not refused.
        #expect(Self.arrays(objects: [["id": .integer(1), "doc": .object([:])]]) == [#"{"1"}"#, "{NULL}", "{NULL}"])
    }
}
