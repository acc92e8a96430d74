import StarlingCore
import StarlingPostgres

/// Applying `repair` entries (a reconciliation's fixes for this region) with the ordinary apply functions.
///
/// A repair re-asserts the hub's head of a key for this region only: it must be written even though the
/// region's version of the key may already equal the head's seq (that is the corrupted case: the version
/// says "up to date", the row says otherwise). It is applied as an image with seq = the entry's `base` (the
/// head's seq), after the key's version row is taken away when it is not newer than `base`; the apply then
/// writes the image and records version `base` again. A version newer than `base` (this region's own change
/// was accepted after the repair was made) stays, and the repair is skipped as outdated. A key with a
/// pending local change is skipped as usual (its verdict brings the right image); a version taken away for a
/// repair that was not applied is put back afterwards, so nothing but the repaired rows changes.
extension AgentStore {
    /// The versions displaced for `entries`' repairs, as JSON text for ``restoreVersions(_:connection:)``;
    /// nil when the batch has no repair. Runs inside the apply transaction, before the images are applied.
    func displaceRepairedVersions(_ entries: [LogEntry], connection: PostgresConnection) throws -> String? {
        try displaceVersions(
            entries.filter { $0.kind == .repair }.map { ($0.table, $0.key, $0.base ?? 0) }, connection: connection)
    }

    /// Takes away the version of each `(table, key)` that is not newer than `upTo`, so an image of seq `upTo`
    /// applies even where the version already says `upTo`; returns them for ``restoreVersions(_:connection:)``
    /// (nil when `keys` is empty). Repairs use it, and so do rejected verdicts: a rejected local change's row
    /// is the region's own image whatever its version says, so the winner's image must be written even at
    /// an equal version (an entry deleting a key applies while an application transaction inserts it: the
    /// DELETE does not wait for the uncommitted row, the region keeps it with the entry's version, and the
    /// insert is then rejected with that very entry as winner).
    func displaceVersions(_ keys: [(String, JSONObject, Int64)], connection: PostgresConnection) throws -> String? {
        guard !keys.isEmpty else { return nil }
        let document = JSONValue.array(
            keys.map { table, key, upTo in ["t": .string(table), "k": .object(key), "b": .integer(upTo)] })
        let rows = try connection.query(
            """
            WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(t text, k jsonb, b bigint)),
                 d AS (DELETE FROM starling.versions v USING r
                       WHERE v.table_name = r.t AND v.key = r.k AND v.seq <= r.b RETURNING v.*)
            SELECT coalesce(json_agg(d), '[]')::text AS displaced FROM d
            """, [.text(document.canonicalText)], name: "agent.versions.displace")
        return try rows.first?.string("displaced")
    }

    /// Puts back the displaced versions of keys the images did not write (skipped as pending).
    func restoreVersions(_ displaced: String?, connection: PostgresConnection) throws {
        guard let displaced, displaced != "[]" else { return }
        try connection.query(
            """
            INSERT INTO starling.versions SELECT * FROM json_populate_recordset(NULL::starling.versions, $1::json)
            ON CONFLICT (table_name, key) DO NOTHING
            """, [.text(displaced)], name: "agent.repair.restore")
    }
}
