import StarlingPostgres

/// `starling_hub.staged_chunks` (migration 7): the chunks of origin transactions too large for one push, kept
/// until the last chunk arrives and the sequencer logs the whole transaction (README "Large transactions").
///
/// A chunk's identity is (origin, tx, first index): a re-sent chunk is stored once (`ON CONFLICT DO NOTHING`),
/// and chunks cut differently (an agent restarted with other batch limits) may overlap; ``coverage(_:)`` reads
/// each ordinal once. Staging runs on the read pool's connections; only the sequencer's batch deletes, in the
/// transaction that logs the chunks' changes, so a staged transaction is either wholly staged or wholly logged.
enum ChunkStaging {
    /// Where one stored chunk sits in its transaction.
    struct Extent: Sendable, Hashable {
        var first: Int
        var count: Int
    }

    /// Stores a chunk unless one with the same identity is stored already (a re-send changes nothing).
    static func stage(
        _ connection: PostgresConnection, origin: String, tx: String, extent: Extent, body: String
    ) throws {
        try connection.execute(
            "INSERT INTO starling_hub.staged_chunks (origin, tx, first_index, changes, body) "
                + "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (origin, tx, first_index) DO NOTHING",
            [.text(origin), .text(tx), .int32(Int32(extent.first)), .int32(Int32(extent.count)), .text(body)],
            name: "staging.stage")
    }

    /// The extents of a transaction's stored chunks, by first index.
    static func extents(_ connection: PostgresConnection, origin: String, tx: String) throws -> [Extent] {
        try connection.query(
            "SELECT first_index, changes FROM starling_hub.staged_chunks WHERE origin = $1 AND tx = $2 "
                + "ORDER BY first_index",
            [.text(origin), .text(tx)], name: "staging.extents"
        ).map { row in Extent(first: Int(try row.int64(0)), count: Int(try row.int64(1))) }
    }

    /// The body of one stored chunk (the sequencer reads a transaction a chunk at a time).
    static func body(_ connection: PostgresConnection, origin: String, tx: String, first: Int) throws -> String {
        let rows = try connection.query(
            "SELECT body FROM starling_hub.staged_chunks WHERE origin = $1 AND tx = $2 AND first_index = $3",
            [.text(origin), .text(tx), .int32(Int32(first))], name: "staging.body")
        guard let row = rows.first else {
            throw HubError(code: .storageFailed, message: "staged chunk \(first) of \(tx) is gone")
        }
        return try row.string(0)
    }

    /// Deletes a transaction's chunks (the sequencer's batch, as it logs them).
    static func delete(_ connection: PostgresConnection, origin: String, tx: String) throws {
        try connection.execute(
            "DELETE FROM starling_hub.staged_chunks WHERE origin = $1 AND tx = $2", [.text(origin), .text(tx)],
            name: "staging.delete")
    }

    /// Deletes chunks staged more than `windowSeconds` ago (the retention window): those of a transaction whose
    /// region went away mid-push. Always safe: a region that comes back sends the transaction's last chunk, gets
    /// 409 `chunks_missing` and re-sends it from its start. Returns the chunks deleted.
    @discardableResult
    static func deleteStale(_ connection: PostgresConnection, windowSeconds: Int64) throws -> Int {
        let deleted = try connection.query(
            "WITH gone AS (DELETE FROM starling_hub.staged_chunks WHERE staged_at < now() - $1 * interval '1 second' "
                + "RETURNING 1) SELECT count(*) FROM gone",
            [.int64(windowSeconds)], name: "staging.deleteStale")[0].int64(0)
        return Int(deleted)
    }

    /// The part of each extent (sorted by first index) that continues the contiguous run from ordinal 0:
    /// `(extent index, drop)`, to take the chunk's changes after its first `drop` (read by an earlier chunk),
    /// and `through`, the end of that run. Extents wholly inside the run are skipped; the walk stops at a gap.
    static func coverage(_ extents: [Extent]) -> (parts: [(index: Int, drop: Int)], through: Int) {
        var parts: [(index: Int, drop: Int)] = []
        var through = 0
        for (index, extent) in extents.enumerated() {
            guard extent.first <= through else { break }
            let end = extent.first + extent.count
            guard end > through else { continue }
            parts.append((index, through - extent.first))
            through = end
        }
        return (parts, through)
    }
}
