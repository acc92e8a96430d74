import StarlingCore
import StarlingPostgres

extension AgentStore {
    /// Changes of a spilled transaction read back and decided at a time.
    static let spilledVerdictSlice = 5_000

    /// Acts on the verdicts of a spilled transaction (WAL capture, README "Large transactions"): what
    /// ``handleVerdicts(_:for:wal:connection:)`` does for a batch, in one local transaction, with the changes read
    /// back from the scratch file a slice at a time and the verdicts expanded a slice at a time, so nothing per
    /// change stays in memory. A change is superseded when a later change of its key is in the transaction
    /// (``SpilledTransaction/lastOrdinal``) or still queued (`stillPending`); `overwritten`: positions of its
    /// changes an agent transaction wrote over. The marker (every handled key's version) goes in at the end,
    /// which the decoder reads the same as at the start: it applies a marker at its transaction's commit.
    func handleSpilledVerdicts(
        _ verdicts: TransactionVerdicts, for source: SpilledChanges, overwritten: Set<StreamPosition>,
        stillPending: Set<TableKey>, journal: Bool, connection: PostgresConnection
    ) throws -> VerdictSummary {
        let transaction = source.transaction
        guard verdicts.count == transaction.count else {
            throw AgentError(
                code: .invalidResponse,
                message: "the hub answered \(verdicts.count) verdicts for transaction \(transaction.tx) of \(transaction.count) changes",
                isRetryable: true)
        }
        if !journal && overwritten.isEmpty {
            return try handleSpilledExceptions(
                verdicts, for: source, stillPending: stillPending, connection: connection)
        }
        return try relaxedTransaction(connection, name: "agent.verdicts.spilled") { connection in
            var expander = TransactionVerdicts.Expander(verdicts)
            var summary = VerdictSummary()
            var decided = JSONBatchWriter()
            var markerVersions: [TableKey: Int64] = [:]
            var tables: Set<String>?
            for start in stride(from: 0, to: transaction.count, by: Self.spilledVerdictSlice) {
                let range = start..<min(start + Self.spilledVerdictSlice, transaction.count)
                let changes = try source.changes(range)
                let slice = try Self.expand(&expander, ids: changes.map(\.id), tx: transaction.tx)
                var work = VerdictWork(region: region, isWAL: true, versionRows: false)
                for (offset, (change, verdict)) in zip(changes, slice).enumerated() {
                    let key = TableKey(table: change.table, key: change.key)
                    let number = ChangeID(change.id)?.number ?? -1
                    work.add(
                        verdict, for: change, key: key,
                        isSuperseded: transaction.lastOrdinal[key] != range.lowerBound + offset || stillPending.contains(key),
                        isOverwritten: overwritten.contains(StreamPosition(commitLSN: transaction.commitLSN, number: number)))
                }
                if journal { try self.journal(changes, verdicts: slice, connection: connection) }
                try writeImages(of: work, tables: &tables, summary: &summary, connection: connection)
                summary.add(work.summary)
                decided.append(contentsOf: work.decided)
                markerVersions.merge(work.markerVersions) { _, later in later }
            }
            try Self.finishExpanding(expander, tx: transaction.tx)
            return try settleSpilled(
                transaction, versions: markerVersions, decided: &decided, tables: tables, summary: summary,
                connection: connection)
        }
    }

    /// ``handleSpilledVerdicts(_:for:overwritten:stillPending:journal:connection:)`` when only the verdicts the
    /// walk does not predict need their changes (no journal, nothing overwritten): every other change was accepted
    /// at its seq, which is all its key's version needs, so the scratch file is read only where exceptions are.
    private func handleSpilledExceptions(
        _ verdicts: TransactionVerdicts, for source: SpilledChanges, stillPending: Set<TableKey>,
        connection: PostgresConnection
    ) throws -> VerdictSummary {
        let transaction = source.transaction
        let versions = verdicts.versions()
        var summary = VerdictSummary()
        var decided = JSONBatchWriter()
        var markerVersions: [TableKey: Int64] = [:]
        markerVersions.reserveCapacity(transaction.lastOrdinal.count)
        for (key, ordinal) in transaction.lastOrdinal where !stillPending.contains(key) {
            markerVersions[key] = versions[ordinal]
            decided.append(table: key.table, key: key.key, seq: versions[ordinal])
        }
        summary.accepted = verdicts.count - verdicts.exceptions.count
        return try relaxedTransaction(connection, name: "agent.verdicts.spilled") { connection in
            var tables: Set<String>?
            var exceptions = verdicts.exceptions[...]
            while let first = exceptions.first {
                // The exceptions within one slice of the file, read together.
                let range = first.index..<min(first.index + Self.spilledVerdictSlice, transaction.count)
                let inSlice = exceptions.prefix { range.contains($0.index) }
                exceptions = exceptions.dropFirst(inSlice.count)
                let changes = try source.changes(range)
                var work = VerdictWork(region: region, isWAL: true, versionRows: false)
                for (index, verdict) in inSlice {
                    let change = changes[index - range.lowerBound]
                    guard change.id == verdict.id else {
                        throw AgentError(
                            code: .invalidResponse,
                            message: "verdicts of transaction \(transaction.tx): the verdict at \(index) is for \(verdict.id), not \(change.id)",
                            isRetryable: true)
                    }
                    let key = TableKey(table: change.table, key: change.key)
                    work.add(
                        verdict, for: change, key: key,
                        isSuperseded: transaction.lastOrdinal[key] != index || stillPending.contains(key),
                        isOverwritten: false)
                }
                try writeImages(of: work, tables: &tables, summary: &summary, connection: connection)
                summary.add(work.summary)
            }
            return try settleSpilled(
                transaction, versions: markerVersions, decided: &decided, tables: tables, summary: summary,
                connection: connection)
        }
    }

    /// Writes the images a slice's verdicts return (WAL capture: as they are), counting what became of them.
    private func writeImages(
        of work: VerdictWork, tables: inout Set<String>?, summary: inout VerdictSummary, connection: PostgresConnection
    ) throws {
        guard !work.images.isEmpty else { return }
        let installed = try tables ?? installedTables(connection: connection)
        tables = installed
        let letters = work.letters
        for status in try applyImagesInMemory(work.images, tables: installed, connection: connection, deadLetter: { letters[$0] }) {
            summary.count(status)
        }
    }

    /// The end of a spilled transaction's verdicts: its marker (the handled position and every handled key's
    /// version), the log history, and the deferred entries the keys release.
    private func settleSpilled(
        _ transaction: SpilledTransaction, versions: [TableKey: Int64], decided: inout JSONBatchWriter,
        tables: Set<String>?, summary: VerdictSummary, connection: PostgresConnection
    ) throws -> VerdictSummary {
        var summary = summary
        try saveHistory(
            emitting: CaptureLedger.Marker(handledThrough: transaction.last, versions: versions), connection: connection)
        summary.versions = versions
        summary.deferredApplied += try applyReleased(
            try releaseDeferredEntries(keys: decided.finish(), connection: connection), tables: tables,
            versions: versions, connection: connection)
        return summary
    }

    /// The verdicts of the next changes of transaction `tx`, an answer that does not fit them an error.
    static func expand(_ expander: inout TransactionVerdicts.Expander, ids: [String], tx: String) throws(AgentError)
        -> [Verdict]
    {
        do {
            return try expander.next(ids: ids)
        } catch {
            throw AgentError(code: .invalidResponse, message: "verdicts of transaction \(tx): \(error)", isRetryable: true)
        }
    }

    /// Checks that the verdicts of transaction `tx` were used up.
    static func finishExpanding(_ expander: TransactionVerdicts.Expander, tx: String) throws(AgentError) {
        do {
            try expander.finish()
        } catch {
            throw AgentError(code: .invalidResponse, message: "verdicts of transaction \(tx): \(error)", isRetryable: true)
        }
    }
}
