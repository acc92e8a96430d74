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
    /// so is the session's ``transactionPrologue``. With `deferBegin`, those go with the body's first statement
    /// instead, in one pipeline (one round trip less); `settings` must then be one statement.
    @discardableResult
    public func transaction<T>(
        isolation: PostgresIsolation? = nil, name: String? = nil, settings: String? = nil, deferBegin: Bool = false,
        _ body: (PostgresConnection) throws -> T
    ) throws -> T {
        try run(isolation: isolation, name: name, settings: settings, deferBegin: deferBegin, then: nil, body).value
    }

    /// ``transaction(isolation:name:settings:deferBegin:_:)`` whose `COMMIT` is followed by `query` (constant text,
    /// no parameters) in the same round trip; returns the body's value and the query's result, read after the
    /// commit (say the WAL position the commit reached).
    public func transaction<T>(
        name: String? = nil, settings: String? = nil, deferBegin: Bool = false, thenQuery query: String,
        _ body: (PostgresConnection) throws -> T
    ) throws -> (value: T, then: PostgresResult) {
        let (value, then) = try run(
            isolation: nil, name: name, settings: settings, deferBegin: deferBegin, then: query, body)
        guard let then else {
            throw PostgresError(code: .queryFailed, message: "no result after COMMIT", queryName: name)
        }
        return (value, then)
    }

    /// `statements` as one transaction in one round trip: `BEGIN` (with `settings`, one statement, and the session's
    /// ``transactionPrologue``), the statements, `COMMIT` and then `query` (constant text; none when nil), all in one
    /// pipeline with one sync point. Returns the statements' results and the query's. A failing statement makes the
    /// server skip the rest, `COMMIT` included: the transaction is rolled back and the statement's error thrown, so a
    /// statement that raises on purpose (a check of what the caller assumed) undoes everything before it.
    @discardableResult
    public func transaction(
        settings: String? = nil, pipelining statements: [PostgresStatement], thenQuery query: String? = nil
    ) throws(PostgresError) -> (results: [PostgresResult], then: PostgresResult?) {
        precondition(!isInTransaction && deferredBegin == nil, "transaction() called inside an open transaction")
        deferredBegin = beginStatements(isolation: nil, settings: settings)
        do throws(PostgresError) {
            return try pipelineCommitting(statements, then: query)
        } catch {
            // The skipped COMMIT leaves the transaction open and failed until a ROLLBACK.
            deferredBegin = nil
            if isInTransaction { rollbackQuietly() }
            throw error
        }
    }

    /// Inside the body of ``transaction(isolation:name:settings:deferBegin:_:)``, as its last use of the connection:
    /// runs `statements` and the transaction's `COMMIT` in one pipeline (one round trip, with a `BEGIN` still
    /// deferred), so the transaction sends no `COMMIT` of its own afterwards. Returns the statements' results. A
    /// failing statement makes the server skip the rest, `COMMIT` included: its error is thrown and the transaction
    /// rolls back; a failing `COMMIT` throws its error (the server has rolled back).
    @discardableResult
    public func commit(pipelining statements: [PostgresStatement]) throws(PostgresError) -> [PostgresResult] {
        precondition(isInTransaction || deferredBegin != nil, "commit(pipelining:) called outside a transaction")
        let results = try pipelineCommitting(statements, then: nil).results
        committedByBody = true
        return results
    }

    /// `statements`, `COMMIT` and then `query` (none when nil) in one pipeline, a deferred `BEGIN` first; the
    /// statements' results and the query's.
    private func pipelineCommitting(_ statements: [PostgresStatement], then query: String?)
        throws(PostgresError) -> (results: [PostgresResult], then: PostgresResult?)
    {
        let all =
            statements + [PostgresStatement("COMMIT", name: "commit", prepared: true)]
            + (query.map { [PostgresStatement($0, name: "then", prepared: true)] } ?? [])
        let results = try pipeline(all)
        guard results.count == all.count else {
            throw PostgresError(code: .protocolError, message: "a pipelined transaction lost results")
        }
        return (Array(results.prefix(statements.count)), query == nil ? nil : results.last)
    }

    private func run<T>(
        isolation: PostgresIsolation?, name: String?, settings: String?, deferBegin: Bool, then query: String?,
        _ body: (PostgresConnection) throws -> T
    ) throws -> (value: T, then: PostgresResult?) {
        precondition(!isInTransaction && deferredBegin == nil, "transaction() called inside an open transaction")
        let begin = beginStatements(isolation: isolation, settings: settings)
        if deferBegin {
            deferredBegin = begin
        } else {
            try executeScript(begin.joined(separator: "; "), name: name)
        }
        committedByBody = false
        let value: T
        do {
            value = try body(self)
        } catch {
            committedByBody = false
            rollbackQuietly()
            throw error
        }
        if committedByBody {
            committedByBody = false
            guard let query else { return (value, nil) }
            return (value, try executeScript(query, name: name))
        }
        if isTransactionFailed {
            rollbackQuietly()
            throw PostgresError(
                code: .queryFailed, message: "transaction aborted by an earlier statement error",
                sqlState: "25P02", queryName: name)
        }
        // A body that sent nothing never began: there is nothing to commit.
        let began = deferredBegin == nil
        deferredBegin = nil
        do {
            let script = (began ? ["COMMIT"] : []) + (query.map { [$0] } ?? [])
            guard !script.isEmpty else { return (value, nil) }
            let result = try executeScript(script.joined(separator: "; "), name: name)
            return (value, query == nil ? nil : result)
        } catch {
            if isInTransaction { rollbackQuietly() }
            throw error
        }
    }

    /// A transaction's `BEGIN`, its `settings` and the session's ``transactionPrologue``.
    private func beginStatements(isolation: PostgresIsolation?, settings: String?) -> [String] {
        [isolation?.sql ?? "BEGIN"] + Self.merged(settings, transactionPrologue)
    }

    /// `settings` and `prologue` as one statement when both are a `SELECT` of a list of expressions (no `FROM`),
    /// their lists joined: a statement fewer in every transaction of an agent's apply connections, about 10 µs of
    /// their backend's CPU each (a one-entry apply takes about 250 µs, 2026-12-06). Otherwise as they are.
    static func merged(_ settings: String?, _ prologue: String?) -> [String] {
        guard let settings, let prologue, isSelectList(settings), isSelectList(prologue) else {
            return [settings, prologue].compactMap { $0 }
        }
        return [settings + ", " + prologue.dropFirst(selectPrefix.utf8.count)]
    }

    private static let selectPrefix = "SELECT "
    private static let fromWord = Array(" FROM ".utf8)

    /// Whether `statement` is a bare `SELECT` list: it starts with `SELECT ` and holds no `;` and no ` FROM ` in any
    /// case. A scan of its bytes: with Foundation's `uppercased().contains(_:)` this check, made at every
    /// transaction's `BEGIN`, was 3 % of an agent's database thread in W2 at R=8 (2026-12-07).
    static func isSelectList(_ statement: String) -> Bool {
        guard statement.hasPrefix(selectPrefix) else { return false }
        var matched = 0
        for byte in statement.utf8 {
            if byte == UInt8(ascii: ";") { return false }
            let upper = byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") ? byte - 32 : byte
            if upper == fromWord[matched] {
                matched += 1
                if matched == fromWord.count { return false }
            } else {
                // Only the word's leading space can start it again (it holds no other space before its end).
                matched = upper == fromWord[0] ? 1 : 0
            }
        }
        return true
    }

    /// `ROLLBACK`, ignoring failure: used on paths that already have an error to report (a broken connection
    /// rolls back on the server by itself).
    func rollbackQuietly() {
        if deferredBegin != nil {
            deferredBegin = nil  // never sent: nothing began
            return
        }
        guard !isConnectionLost else { return }
        _ = try? executeScript("ROLLBACK", name: "rollback")
    }
}
