import StarlingPostgres
import StarlingTestSupport
import Testing

/// The rows every batch method must store exactly: nasty strings, NULLs, bytes, one per id.
private func batchRows(count: Int) -> [(id: Int64, text: String?, raw: [UInt8]?)] {
    (0..<count).map { index in
        let text: String? = index % 17 == 5 ? nil : nastyStrings[index % nastyStrings.count] + "#\(index)"
        let raw: [UInt8]? = index % 13 == 3 ? nil : [UInt8(index & 0xff), 0, 92, 9, 10]
        return (Int64(index), text, raw)
    }
}

private func readBack(_ connection: PostgresConnection) throws -> [(id: Int64, text: String?, raw: [UInt8]?)] {
    try connection.query("SELECT id, t, b FROM items ORDER BY id").map { row in
        (try row.int64("id"), try row.optionalString("t"), try row.optionalBytes("b"))
    }
}

private func expectSame(
    _ actual: [(id: Int64, text: String?, raw: [UInt8]?)],
    _ expected: [(id: Int64, text: String?, raw: [UInt8]?)]
) {
    #expect(actual.count == expected.count)
    for (a, e) in zip(actual, expected) where a.id != e.id || a.text != e.text || a.raw != e.raw {
        Issue.record("row \(e.id) differs: got \(a), want \(e)")
        return
    }
}

@Suite(.timeLimit(.minutes(2)))
struct PostgresBatchTests {
    static let createTable = "CREATE TABLE items (id bigint PRIMARY KEY, t text, b bytea)"

    /// Proves pipeline mode inserts exactly the given rows (one result each) and is all-or-nothing on error.
    @Test func pipelineInsertsExactly() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            try connection.executeScript(Self.createTable)
            let rows = batchRows(count: 3000)
            let statements = rows.map {
                PostgresStatement(
                    "INSERT INTO items (id, t, b) VALUES ($1, $2, $3)",
                    [.int64($0.id), .optionalText($0.text), $0.raw.map { .bytes($0) } ?? .null])
            }
            let results = try connection.pipeline(statements)
            #expect(results.count == rows.count)
            #expect(results.allSatisfy { $0.affectedRows == 1 })
            expectSame(try readBack(connection), rows)

            let failing = [
                PostgresStatement("INSERT INTO items (id) VALUES ($1)", [100_000]),
                PostgresStatement("INSERT INTO items (id) VALUES ($1)", [0], name: "duplicate"),
                PostgresStatement("INSERT INTO items (id) VALUES ($1)", [100_001]),
            ]
            let error = #expect(throws: PostgresError.self) { try connection.pipeline(failing) }
            #expect(error?.sqlState == "23505")
            #expect(try connection.query("SELECT count(*) AS n FROM items")[0].int64("n") == 3000)
            #expect(connection.isIdle)
            let selects = try connection.pipeline([
                PostgresStatement("SELECT $1::text AS v", ["a"]),
                PostgresStatement("SELECT 2 AS v"),
            ])
            #expect(try selects.map { try $0[0].string("v") } == ["a", "2"])
            #expect(try connection.pipeline([PostgresStatement]()).isEmpty)
        }
    }

    /// Proves an unnest insert stores exactly the rows COPY would (nasty strings, NULLs, integers, flags) inside a
    /// transaction's pipeline, and refuses a value of the wrong type instead of sending it as NULL.
    @Test func unnestInsertStoresExactly() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            try connection.executeScript("CREATE TABLE flags (id bigint PRIMARY KEY, t text, f boolean)")
            let rows = batchRows(count: 500)
            let values: [[PostgresValue]] = rows.map {
                [.int64($0.id), $0.text.map { .text($0) } ?? .null, $0.id % 3 == 0 ? .null : .bool($0.id % 2 == 0)]
            }
            let columns: [(name: String, type: PostgresArrayType)] = [("id", .int64), ("t", .text), ("f", .bool)]
            try connection.transaction { connection in
                _ = try connection.pipeline([
                    try .unnestInsert(into: "flags", columns: columns, rows: values),
                    PostgresStatement("UPDATE flags SET t = t || '!' WHERE id = 1"),
                ])
            }
            let back = try connection.query("SELECT id, t, f FROM flags ORDER BY id").map { row in
                (try row.int64("id"), try row.optionalString("t"), try row.optionalString("f"))
            }
            #expect(back.count == rows.count)
            for (row, want) in zip(back, rows) {
                let text = want.id == 1 ? want.text.map { $0 + "!" } : want.text
                let flag: String? = want.id % 3 == 0 ? nil : (want.id % 2 == 0 ? "t" : "f")
                guard row.0 == want.id, row.1 == text, row.2 == flag else {
                    Issue.record("row \(want.id) differs: got \(row)")
                    break
                }
            }
            #expect(throws: PostgresError.self) {
                try PostgresStatement.unnestInsert(into: "flags", columns: columns, rows: [[.int64(1), .int64(2), .null]])
            }
            #expect(throws: PostgresError.self) {
                try PostgresStatement.unnestInsert(into: "flags", columns: columns, rows: [[.int64(1)]])
            }
        }
    }

    /// Proves COPY FROM STDIN stores exactly the given rows (tabs, newlines, backslashes, \N text, NULL, bytes)
    /// and that an aborted COPY inserts nothing and leaves the connection usable.
    @Test func copyInsertsExactly() async throws {
        struct Stop: Error {}
        try await TestDatabase.with { db in
            let connection = try db.connect()
            try connection.executeScript(Self.createTable)
            let rows = batchRows(count: 5000)
            let copied = try connection.copyIn(
                table: "public.items", columns: ["id", "t", "b"],
                rows: rows.map { [.int64($0.id), .optionalText($0.text), $0.raw.map { .bytes($0) } ?? .null] })
            #expect(copied == rows.count)
            expectSame(try readBack(connection), rows)

            #expect(throws: Stop.self) {
                try connection.copyIn(table: "items", columns: ["id"]) { writer in
                    try writer.appendRow([.int64(1_000_000)])
                    throw Stop()
                }
            }
            let wrongWidth = #expect(throws: PostgresError.self) {
                try connection.copyIn(table: "items", columns: ["id", "t"]) { try $0.appendRow([1]) }
            }
            #expect(wrongWidth?.code == .invalidParameter)
            let duplicate = #expect(throws: PostgresError.self) {
                try connection.copyIn(table: "items", columns: ["id"], rows: [[.int64(2_000_000)], [.int64(0)]])
            }
            #expect(duplicate?.sqlState == "23505")
            #expect(try connection.query("SELECT count(*) AS n FROM items")[0].int64("n") == 5000)
            #expect(connection.isIdle)
        }
    }

    /// Proves array parameters with unnest insert exactly the given rows, NULL elements and the text "NULL" kept
    /// apart, with quotes, backslashes, commas and braces inside elements.
    @Test func arrayParametersInsertExactly() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            try connection.executeScript(Self.createTable)
            let rows = batchRows(count: 4000)
            for chunk in stride(from: 0, to: rows.count, by: 1000) {
                let slice = rows[chunk..<min(chunk + 1000, rows.count)]
                let inserted = try connection.execute(
                    "INSERT INTO items (id, t, b) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[])",
                    [.int64Array(slice.map(\.id)), .textArray(slice.map(\.text)), .bytesArray(slice.map(\.raw))])
                #expect(inserted == slice.count)
            }
            expectSame(try readBack(connection), rows)
            let echoed = try connection.query(
                "SELECT $1::text[] = ARRAY['NULL', NULL, '', '{,}']::text[] AS same",
                [.textArray(["NULL", nil, "", "{,}"])])
            #expect(try echoed[0].bool("same"))
            let doubles = try connection.query(
                "SELECT unnest($1::float8[]) AS d", [.doubleArray([0.5, nil, -.infinity])])
            #expect(try doubles.map { try $0.optionalDouble("d") } == [0.5, nil, -.infinity])
            let bools = try connection.query("SELECT unnest($1::bool[]) AS b", [.boolArray([true, nil, false])])
            #expect(try bools.map { try $0.optionalBool("b") } == [true, nil, false])
        }
    }
}
