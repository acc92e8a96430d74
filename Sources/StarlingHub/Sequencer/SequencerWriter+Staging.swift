import StarlingPostgres

extension SequencerWriter {
    /// Deletes the staged chunks of every chunked transaction in `batch`, inside the batch's transaction: the
    /// chunks go exactly when their changes are logged, so a transaction is never both staged and logged (a
    /// re-sent last chunk then finds its chunks gone and the agent re-sends from the start; its changes are
    /// answered from their stored verdicts).
    func deleteStaged(_ batch: [Sequencer.Item], connection: PostgresConnection) throws {
        for item in batch {
            guard case .push(_, _, let texts, _) = item, let staged = texts.staged else { continue }
            try ChunkStaging.delete(connection, origin: staged.origin, tx: staged.tx)
        }
    }
}
