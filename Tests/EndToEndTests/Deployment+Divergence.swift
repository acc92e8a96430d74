import StarlingPostgres

extension Deployment {
    /// For a convergence failure: every key of every synced table whose row differs between a region and the
    /// first region, with each side's row and `starling.versions` entry, the hub's head and the key's log
    /// entries (seq, origin, change id, kind, rewritten, row). Empty when every table agrees.
    func divergenceReport(maxKeys: Int = 10) async throws -> [String] {
        var lines: [String] = []
        for table in tables {
            let reference = try await keyedRows(regions[0], table: table.name)
            for region in regions.dropFirst() {
                let rows = try await keyedRows(region, table: table.name)
                let letters = try await sql(region) { connection in
                    try connection.query(
                        "SELECT count(*) FROM starling.dead_letters WHERE table_name = $1", [.text(table.name)]
                    )[0].int64(0)
                }
                if letters > 0 { lines.append("\(table.name): \(region) has \(letters) dead letters") }
                let keys = Set(reference.keys).union(rows.keys).filter { reference[$0]?.row != rows[$0]?.row }
                for key in keys.sorted().prefix(maxKeys) {
                    lines.append(
                        "\(table.name) k=\(key): \(region) row \(rows[key]?.row ?? "-") version \(rows[key]?.version ?? "-"); "
                            + "\(regions[0]) row \(reference[key]?.row ?? "-") version \(reference[key]?.version ?? "-")")
                    lines += try await hubHistory(table: table.name, key: key)
                }
            }
        }
        return lines
    }

    /// Rows and versions of one table by the text of column `k`.
    private func keyedRows(_ region: String, table: String) async throws -> [String: (row: String?, version: String?)] {
        try await sql(region) { connection in
            let rows = try connection.query(
                "SELECT coalesce(x.k, (v.key->>'k')::int)::text AS k, to_jsonb(x)::text AS row, "
                    + "v.seq::text || ' ' || v.origin AS version FROM (SELECT * FROM \(table)) x "
                    + "FULL JOIN (SELECT * FROM starling.versions WHERE table_name = $1) v ON (v.key->>'k')::int = x.k",
                [.text(table)])
            var result: [String: (row: String?, version: String?)] = [:]
            for row in rows {
                result[try row.string("k")] = (try row.optionalString("row"), try row.optionalString("version"))
            }
            return result
        }
    }

    /// The hub's head of a key and its last log entries, one line each.
    private func hubHistory(table: String, key: String) async throws -> [String] {
        try await sql("hub") { connection in
            let keyText = "{\"k\":\(key)}"
            var lines: [String] = []
            for row in try connection.query(
                "SELECT seq, origin, hlc, op, prev_foreign_seq, row FROM starling_hub.heads WHERE table_name = $1 AND key = $2",
                [.text(table), .text(keyText)])
            {
                lines.append(
                    "  head seq \(try row.int64(0)) origin \(try row.string(1)) hlc \(try row.int64(2)) op \(try row.string(3)) "
                        + "pfs \(try row.int64(4)) row \(try row.optionalString(5) ?? "null")")
            }
            for row in try connection.query(
                "SELECT seq, origin, change_id, kind, rewritten, hlc, row FROM (SELECT * FROM starling_hub.log "
                    + "WHERE table_name = $1 AND key = $2 ORDER BY seq DESC LIMIT 12) l ORDER BY seq",
                [.text(table), .text(keyText)])
            {
                lines.append(
                    "  log \(try row.int64(0)) \(try row.string(1)) \(try row.string(2)) \(try row.string(3)) "
                        + "rewritten \(try row.bool(4)) hlc \(try row.int64(5)) row \(try row.optionalString(6) ?? "null")")
            }
            for row in try connection.query(
                "SELECT id, incoming_id, incoming_origin, incoming_base, status, winner, current_seq, incoming_row "
                    + "FROM starling_hub.conflicts WHERE table_name = $1 AND key = $2 ORDER BY id DESC LIMIT 6",
                [.text(table), .text(keyText)])
            {
                lines.append(
                    "  conflict \(try row.int64(0)) incoming \(try row.string(1)) base \(try row.int64(3)) "
                        + "\(try row.string(4))/\(try row.string(5)) current \(try row.int64(6)) "
                        + "row \(try row.optionalString(7) ?? "null")")
            }
            return lines
        }
    }
}
