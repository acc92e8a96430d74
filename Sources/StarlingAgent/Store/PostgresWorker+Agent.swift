import StarlingPostgres

extension PostgresWorker {
    /// Runs `body` on this worker's connection thread; a failure becomes an `AgentError` whose message names
    /// `what` (retryable, unless the body threw a non-retryable `AgentError`, which passes through as it is).
    func run<T: Sendable>(
        during what: String, _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws(AgentError) -> T {
        do {
            return try await withConnection(body)
        } catch {
            throw AgentError.database(error, during: what)
        }
    }
}
