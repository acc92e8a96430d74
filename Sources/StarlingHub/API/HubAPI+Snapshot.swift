import StarlingCore
import StarlingHTTP2
import StarlingPostgres

/// Bootstrap routes: a new or pruned-past region loads a table's heads page by page, then tails the log.
///
/// `GET /v1/snapshot?table=T&after=KEY&limit=N` (region token) → `{"table":T,"seq":S,"heads":H,
/// "adopted_by":R|null,"adopted_rows":N|null,"rows":[{"key":{…},"row":{…}|null,"seq":N,"origin":"…"}],
/// "next":KEY|null}`. Rows are heads in key order (the canonical key text, the database's collation), after
/// the key text `after` (omitted: from the start), tombstones included (`row` null) so a region that holds
/// rows learns about deletes. `seq` is the hub's committed head when the page was read; `heads` (first page
/// only, else null) counts the table's heads.
///
/// Consistency without a hub transaction across requests: the agent keeps the first page's `seq` S. Every
/// head it reads later was read after S committed, so it reflects every entry up to S, and possibly later
/// ones (its own `seq` says which). The agent stores each row with its head's seq as the key's version and
/// then pulls from S: an entry the snapshot already reflects has a seq at or below the key's version and is
/// skipped by the version check, every other one is applied. The result equals applying the whole log.
///
/// `POST /v1/snapshot/adopt` `{"table":T,"rows":N}` (region token): the region's existing rows become the
/// table's initial state. 200 `{"adopted_by":R}` when this region holds the claim (now or earlier: retries
/// are idempotent); 409 `adoption_refused` when another region adopted the table or the hub already holds
/// heads of it (the region must compare with the snapshot instead).
extension HubAPI {
    /// Largest snapshot page.
    static let maxSnapshotPage = 10_000

    /// `GET /v1/snapshot`: one page of a table's heads (see above for why pages need no transaction).
    func snapshot(_ request: HubRequest) async throws -> HTTPResponse {
        let query = request.query
        guard let table = query["table"], settings.tablesByName[table] != nil else {
            // `table_not_synced`: the table list may just have changed under the agent (a reload); it retries.
            throw HTTPError(400, code: "table_not_synced", "table must name a synced table")
        }
        let after = query["after"]
        let limit = Int(try Self.integer(query["limit"], name: "limit", default: 1000, range: 1...Int64(Self.maxSnapshotPage)))
        let seq = notifier.head
        let page = try await pool.withConnection { connection in
            try Self.readSnapshot(connection, table: table, after: after, limit: limit)
        }
        var output: [UInt8] = []
        SnapshotPage.write(
            table: table, seq: seq, rowsJSON: page.rowsJSON, next: page.next, heads: page.heads,
            adoptedBy: page.adoptedBy, adoptedRows: page.adoptedRows, to: &output)
        return .json(200, output)
    }

    /// One page of heads as JSON (stored texts copied, unparsed) plus the adoption record: the parts of a
    /// ``SnapshotPage`` as the database holds them.
    struct StoredSnapshotPage: Sendable {
        var rowsJSON: [UInt8] = []
        var next: String?
        var heads: Int64?
        var adoptedBy: String?
        var adoptedRows: Int64?
    }

    /// Reads one page of heads after `after`, the head count on the first page, and the adoption record.
    static func readSnapshot(_ connection: PostgresConnection, table: String, after: String?, limit: Int) throws
        -> StoredSnapshotPage
    {
        var page = StoredSnapshotPage()
        // The count before the rows (a later statement, so a later snapshot): a region that sees at least the
        // adopted row count here finds every adopted row in the pages. Counted after, rows committing between the
        // two statements were counted but missing from this page and, sorting before its last key, from the next
        // ones too (a region waiting for an adopter's rows then saw half of them "differ").
        if after == nil {
            page.heads = try connection.query(
                "SELECT count(*) FROM starling_hub.heads WHERE table_name = $1", [.text(table)],
                name: "hub.snapshot.count")[0].int64(0)
        }
        let rows = try connection.query(
            "SELECT key, row, seq, origin FROM starling_hub.heads WHERE table_name = $1 AND ($2::text IS NULL OR key > $2) "
                + "ORDER BY key LIMIT $3", [.text(table), after.map(PostgresValue.text) ?? .null, .int(limit)],
            name: "hub.snapshot")
        var last: String?
        for (index, row) in rows.enumerated() {
            if index > 0 { page.rowsJSON.append(UInt8(ascii: ",")) }
            let key = try row.string(0)
            last = key
            SnapshotPage.Row.write(
                keyJSON: key, origin: try row.string(3), rowJSON: try row.optionalString(1), seq: try row.int64(2),
                to: &page.rowsJSON)
        }
        page.next = rows.rowCount == limit ? last : nil
        let adoption = try connection.query(
            "SELECT region, row_count FROM starling_hub.adoptions WHERE table_name = $1", [.text(table)],
            name: "hub.snapshot.adoption")
        if let row = adoption.first {
            page.adoptedBy = try row.string(0)
            page.adoptedRows = try row.int64(1)
        }
        return page
    }

    /// `POST /v1/snapshot/adopt`: claims a table with no heads for the calling region (idempotent).
    func adopt(_ request: HubRequest) async throws -> HTTPResponse {
        let region = request.region
        let body = try Self.jsonBody(request.body)
        guard let table = body["table"]?.stringValue, settings.tablesByName[table] != nil else {
            // `table_not_synced`: the table list may just have changed under the agent (a reload); it retries.
            throw HTTPError(400, code: "table_not_synced", "table must name a synced table")
        }
        guard let rows = body["rows"]?.int64Value, rows >= 0 else {
            throw HTTPError(400, code: "invalid_request", "rows must be a non-negative integer")
        }
        let holder = try await pool.withConnection { connection in
            try connection.query(
                "INSERT INTO starling_hub.adoptions (table_name, region, row_count) SELECT $1, $2, $3 "
                    + "WHERE NOT EXISTS (SELECT 1 FROM starling_hub.heads WHERE table_name = $1) "
                    + "ON CONFLICT (table_name) DO NOTHING", [.text(table), .text(region), .int64(rows)],
                name: "hub.adopt.claim")
            return try connection.query(
                "SELECT region FROM starling_hub.adoptions WHERE table_name = $1", [.text(table)],
                name: "hub.adopt.holder"
            ).first?.string(0)
        }
        guard let holder, holder == region else {
            let reason =
                holder.map { "region \($0) adopted \(table) already" } ?? "the hub already holds rows of \(table)"
            throw HTTPError(
                409, code: "adoption_refused", "\(reason); compare with GET /v1/snapshot and load it instead")
        }
        let answer: JSONValue = ["adopted_by": .string(region), "table": .string(table)]
        return .json(200, answer.serialized())
    }
}
