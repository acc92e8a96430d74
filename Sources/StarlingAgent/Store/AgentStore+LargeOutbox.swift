import StarlingCore
import StarlingPostgres

/// What ``AgentStore/nextPage(connection:maxCount:maxBytes:holding:largeAt:)`` found in the outbox.
public enum OutboxPage: Sendable {
    /// Whole transactions within the push bounds (empty: nothing to push).
    case batch([OutboxChange])
    /// The oldest transaction, too large to read at once.
    case large(OutboxTransaction)
}

/// An origin transaction in the outbox with more rows than `tuning.large_transaction_changes` (trigger capture,
/// README "Large transactions"): in memory only each row's id and size; its rows are read, stamped and pushed a
/// chunk at a time, and its verdicts handled a slice at a time. The outbox is its spill: durable already.
public struct OutboxTransaction: Sendable, Hashable {
    /// `txid_current()` of the application's transaction.
    public var tx: Int64
    /// Its rows' ids, ascending.
    public var ids: [Int64]
    /// Each row's size as the push batches count it (``OutboxChange/approximateBytes``).
    public var sizes: [Int]
    /// The tables its rows change.
    public var tables: Set<String>
}

extension OutboxPage {
    /// The tables the page's changes belong to.
    var tables: Set<String> {
        switch self {
        case .batch(let rows): Set(rows.map(\.table))
        case .large(let transaction): transaction.tables
        }
    }
}

extension AgentStore {
    /// The outbox rows of transaction `tx`, by id and size (the caller counted them: too many to read at once).
    func outboxTransaction(_ tx: Int64, connection: PostgresConnection) throws -> OutboxTransaction {
        let rows = try connection.query(
            """
            SELECT id, 96 + octet_length(key::text) + coalesce(octet_length(before::text), 0)
                   + coalesce(octet_length(after::text), 0) AS size
            FROM starling.outbox WHERE tx = $1 ORDER BY id
            """, [.int64(tx)], name: "agent.outbox.txRows")
        let tables = try connection.query(
            "SELECT DISTINCT table_name FROM starling.outbox WHERE tx = $1", [.int64(tx)], name: "agent.outbox.txTables")
        var transaction = OutboxTransaction(
            tx: tx, ids: [], sizes: [], tables: Set(try tables.map { row throws in try row.string("table_name") }))
        transaction.ids.reserveCapacity(rows.count)
        transaction.sizes.reserveCapacity(rows.count)
        for row in rows {
            transaction.ids.append(try row.int64("id"))
            transaction.sizes.append(Int(try row.int64("size")))
        }
        return transaction
    }

    /// The outbox rows `ids`, in id order (rows no longer there are left out).
    func outboxRows(ids: ArraySlice<Int64>, connection: PostgresConnection) throws -> [OutboxChange] {
        try connection.query(
            "SELECT \(Self.outboxColumns) FROM starling.outbox WHERE id = ANY($1::bigint[]) ORDER BY id",
            [.int64Array(Array(ids))], name: "agent.outbox.rows"
        ).map(Self.outboxChange)
    }

    /// Acts on the verdicts of a large outbox transaction: ``settleVerdicts(_:for:wal:emitsMarker:connection:)``
    /// slice by slice, in one local transaction, the rows read back (stamped when their chunk was pushed) and
    /// the verdicts expanded a slice at a time. A change whose key has a later row in a later slice is
    /// superseded as in one batch: that row is still in the outbox while the slice is handled, so the slice's
    /// images skip it as pending. Under WAL capture (`wal`: rows left from trigger capture) one marker carries
    /// every handled key's version, written last. Also returns the keys of re-asserted rows among them.
    func handleOutboxTransactionVerdicts(
        _ verdicts: TransactionVerdicts, for transaction: OutboxTransaction, wal: WALVerdicts?,
        connection: PostgresConnection
    ) throws -> (summary: VerdictSummary, reasserted: [TableKey]) {
        guard verdicts.count == transaction.ids.count else {
            throw AgentError(
                code: .invalidResponse,
                message: "the hub answered \(verdicts.count) verdicts for transaction \(transaction.tx) of \(transaction.ids.count) changes",
                isRetryable: true)
        }
        return try relaxedTransaction(connection, name: "agent.verdicts.large") { connection in
            var expander = TransactionVerdicts.Expander(verdicts)
            var summary = VerdictSummary()
            var reasserted: [TableKey] = []
            for start in stride(from: 0, to: transaction.ids.count, by: Self.spilledVerdictSlice) {
                let range = start..<min(start + Self.spilledVerdictSlice, transaction.ids.count)
                let rows = try outboxRows(ids: transaction.ids[range], connection: connection)
                guard rows.count == range.count else {
                    throw AgentError(
                        code: .database,
                        message: "outbox rows of transaction \(transaction.tx) vanished before their verdicts were handled",
                        isRetryable: true)
                }
                let changes = try rows.map { row throws in try row.change(region: region) }
                let slice = try Self.expand(&expander, ids: changes.map(\.id), tx: "\(transaction.tx)")
                summary.add(try settleVerdicts(slice, for: changes, wal: wal, emitsMarker: false, connection: connection))
                reasserted += changes.filter { $0.reassert != nil }.map { TableKey(table: $0.table, key: $0.key) }
            }
            try Self.finishExpanding(expander, tx: "\(transaction.tx)")
            if let wal {
                try Self.emit(
                    CaptureLedger.Marker(handledThrough: wal.handledThrough, versions: summary.versions),
                    connection: connection)
            }
            return (summary, reasserted)
        }
    }
}
