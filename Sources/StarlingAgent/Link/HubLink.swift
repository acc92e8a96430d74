public import StarlingCore

/// The agent's view of the hub (DESIGN.md "Interfaces" plus the agent endpoints documented on
/// ``HTTPHubLink``). The real implementation is ``HTTPHubLink``; tests without a hub use a double.
/// Errors: `hubUnavailable` (retryable: transport, timeout, 5xx), `hubRejected` (4xx), `schemaMismatch`
/// (409 on registration), `invalidResponse`.
public protocol HubLink: Sendable {
    /// `GET /v1/config`: this region's name and the synced tables with their policies.
    func config() async throws(AgentError) -> HubConfig
    /// `POST /v1/tables/register`: the first registration of a table sets its shape; a different shape is
    /// refused with `schemaMismatch` naming the table and column.
    func register(_ tables: [TableShape]) async throws(AgentError)
    /// `POST /v1/changes`: one verdict per change, in order. Idempotent on the change ids.
    func push(_ changes: [Change]) async throws(AgentError) -> [Verdict]
    /// `POST /v1/changes` with a `chunk` member: one chunk of an origin transaction too large for one push
    /// (changes at ordinals `first…` of transaction `tx`). Idempotent; the last chunk answers the verdicts of the
    /// whole transaction. Throws `chunksMissing` when the hub lacks earlier chunks.
    func pushChunk(_ changes: ArraySlice<Change>, tx: String, first: Int, isLast: Bool) async throws(AgentError)
        -> ChunkAnswer
    /// `GET /v1/changes?after=&limit=&wait_ms=`.
    func pull(after: Int64, limit: Int, waitMs: Int) async throws(AgentError) -> PullPage
    /// Stamps pulls and pushes with the region's log history and records what their answers say of it.
    func attach(_ history: LogHistory)
    /// `POST /v1/agent-status`.
    func reportStatus(_ status: AgentStatus) async throws(AgentError)
    /// `POST /v1/dead-letters`: entries this region could not apply, recorded by the hub as conflicts.
    func reportDeadLetters(_ letters: [DeadLetter]) async throws(AgentError)
    /// `GET /v1/snapshot`: one page of a table's heads (Bootstrapper.swift has a default for test doubles).
    func snapshot(table: String, after: String?, limit: Int) async throws(AgentError) -> SnapshotPage
    /// `POST /v1/snapshot/adopt`: claims a table whose existing rows become the initial state.
    func adopt(table: String, rows: Int64) async throws(AgentError)
    /// `POST /v1/tables/schema`: a schema change made in this region (id from its WAL position, the table's
    /// columns after it); returns the seq of the version it made or found in force. A change that does not
    /// follow from the hub's shape throws `hubRejected` (409 `schema_conflict`).
    func pushSchema(id: String, change: SchemaChange, columns: [TableShape.Column]) async throws(AgentError)
        -> SchemaAnswer
    /// `GET /v1/reconcile/task`: this region's current reconciliation step, nil when none.
    func reconcileTask() async throws(AgentError) -> ReconcileTask?
    /// `POST /v1/reconcile/answer`: answers a step; returns the next one, nil when done.
    func reconcileAnswer(_ answer: ReconcileAnswer) async throws(AgentError) -> ReconcileTask?
}

/// The hub's answer to a schema change a region pushed.
public struct SchemaAnswer: Sendable, Hashable {
    /// The seq of the version's log entry.
    public var seq: Int64
    /// False when the change (its id) or its shape was in the log already: this push made nothing new.
    public var isNew: Bool

    public init(seq: Int64, isNew: Bool) {
        self.seq = seq
        self.isNew = isNew
    }
}

/// The hub's answer to one chunk of a chunked push.
public enum ChunkAnswer: Sendable, Hashable {
    /// Staged; `through`: the changes the hub holds from ordinal 0 on (answered for a chunk at 0 only).
    case staged(through: Int?)
    /// The last chunk completed the transaction: its verdicts (compacted).
    case completed(TransactionVerdicts)
}

extension HubLink {
    /// Links that do not check the log's history (test doubles) ignore it.
    public func attach(_ history: LogHistory) {}

    /// Links without chunked pushes (test doubles) refuse them.
    public func pushChunk(_ changes: ArraySlice<Change>, tx: String, first: Int, isLast: Bool)
        async throws(AgentError) -> ChunkAnswer
    {
        throw AgentError(code: .hubRejected, message: "this hub link does not push chunks")
    }

    /// Links without schema changes (test doubles) refuse them.
    public func pushSchema(id: String, change: SchemaChange, columns: [TableShape.Column]) async throws(AgentError)
        -> SchemaAnswer
    {
        throw AgentError(code: .hubRejected, message: "this hub link does not take schema changes")
    }

    /// Links without reconciliation (test doubles) never have a task.
    public func reconcileTask() async throws(AgentError) -> ReconcileTask? { nil }
    public func reconcileAnswer(_ answer: ReconcileAnswer) async throws(AgentError) -> ReconcileTask? { nil }
}
