/// Transaction isolation levels for `PostgresConnection.transaction`.
public enum PostgresIsolation: Sendable, Hashable {
    case readCommitted
    case repeatableRead
    case serializable

    var sql: String {
        switch self {
        case .readCommitted: return "BEGIN ISOLATION LEVEL READ COMMITTED"
        case .repeatableRead: return "BEGIN ISOLATION LEVEL REPEATABLE READ"
        case .serializable: return "BEGIN ISOLATION LEVEL SERIALIZABLE"
        }
    }
}

extension PostgresConnection {
    /// Runs `body` inside `BEGIN` … `COMMIT`; any error thrown by `body` rolls back and is rethrown unchanged.
    ///
    /// If `body` swallowed a statement error, the transaction is already aborted and `COMMIT` would silently
    /// roll back: that case is rolled back and reported as `queryFailed` instead of looking like success.
    /// A failing `COMMIT` (serialization failure, deferred constraint) throws its `PostgresError`.
    /// Transactions do not nest (a programmer error).
    ///
    /// `settings` (say `SET LOCAL synchronous_commit = off`) are sent with the `BEGIN`, in the same round trip, and
    /// so is the session's ``transactionPrologue``.
    @discardableResult
    public func transaction<T>(
        isolation: PostgresIsolation? = nil, name: String? = nil, settings: String? = nil,
        _ body: (PostgresConnection) throws -> T
    ) throws -> T {
        precondition(!isInTransaction, "transaction() called inside an open transaction")
        let begin = isolation?.sql ?? "BEGIN"
        try executeScript([begin, settings, transactionPrologue].compactMap { $0 }.joined(separator: "; "), name: name)
        let value: T
        do {
            value = try body(self)
        } catch {
            rollbackQuietly()
            throw error
        }
        if isTransactionFailed {
            rollbackQuietly()
            throw PostgresError(
                code: .queryFailed, message: "transaction aborted by an earlier statement error",
                sqlState: "25P02", queryName: name)
        }
        do {
            try executeScript("COMMIT", name: name)
        } catch {
            if isInTransaction { rollbackQuietly() }
            throw error
        }
        return value
    }

    /// `ROLLBACK`, ignoring failure: used on paths that already have an error to report (a broken connection
    /// rolls back on the server by itself).
    func rollbackQuietly() {
        guard !isConnectionLost else { return }
        _ = try? executeScript("ROLLBACK", name: "rollback")
    }
}
