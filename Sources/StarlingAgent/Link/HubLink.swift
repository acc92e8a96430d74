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
    /// `POST /v1/agent-status`.
    func reportStatus(_ status: AgentStatus) async throws(AgentError)
    /// `POST /v1/dead-letters`: entries this region could not apply, recorded by the hub as conflicts.
    func reportDeadLetters(_ letters: [DeadLetter]) async throws(AgentError)
    /// `GET /v1/snapshot`: one page of a table's heads (Bootstrapper.swift has a default for test doubles).
    func snapshot(table: String, after: String?, limit: Int) async throws(AgentError) -> SnapshotPage
    /// `POST /v1/snapshot/adopt`: claims a table whose existing rows become the initial state.
    func adopt(table: String, rows: Int64) async throws(AgentError)
    /// `GET /v1/reconcile/task`: this region's current reconciliation step, nil when none.
    func reconcileTask() async throws(AgentError) -> ReconcileTask?
    /// `POST /v1/reconcile/answer`: answers a step; returns the next one, nil when done.
    func reconcileAnswer(_ answer: ReconcileAnswer) async throws(AgentError) -> ReconcileTask?
}

/// The hub's answer to one chunk of a chunked push.
public enum ChunkAnswer: Sendable, Hashable {
    /// Staged; `through`: the changes the hub holds from ordinal 0 on (answered for a chunk at 0 only).
    case staged(through: Int?)
    /// The last chunk completed the transaction: its verdicts (compacted).
    case completed(TransactionVerdicts)
}

extension HubLink {
    /// Links without chunked pushes (test doubles) refuse them.
    public func pushChunk(_ changes: ArraySlice<Change>, tx: String, first: Int, isLast: Bool)
        async throws(AgentError) -> ChunkAnswer
    {
        throw AgentError(code: .hubRejected, message: "this hub link does not push chunks")
    }

    /// Links without reconciliation (test doubles) never have a task.
    public func reconcileTask() async throws(AgentError) -> ReconcileTask? { nil }
    public func reconcileAnswer(_ answer: ReconcileAnswer) async throws(AgentError) -> ReconcileTask? { nil }
}

/// `GET /v1/config`: `{"region":"us-east","tables":[{"name":"public.items","policy":"lww"}]}`.
public struct HubConfig: Sendable, Hashable {
    public var region: String
    public var tables: [Table]
    /// The region bits of `starling.next_id()` (`region_id`, hub.yaml `regions[].id`); nil when not configured.
    public var regionID: Int? = nil

    public struct Table: Sendable, Hashable {
        public var name: String
        public var policy: String

        public init(name: String, policy: String) {
            self.name = name
            self.policy = policy
        }
    }

    public init(region: String, tables: [Table]) {
        self.region = region
        self.tables = tables
    }

    /// Decodes the config body; unknown members are ignored.
    public init(json: JSONValue) throws(AgentError) {
        guard let region = json["region"]?.stringValue, let tables = json["tables"]?.arrayValue else {
            throw AgentError(code: .invalidResponse, message: "/v1/config lacks \"region\" or \"tables\"")
        }
        var parsed: [Table] = []
        for table in tables {
            guard let name = table["name"]?.stringValue ?? table.stringValue else {
                throw AgentError(code: .invalidResponse, message: "/v1/config has a table without a name")
            }
            parsed.append(Table(name: name, policy: table["policy"]?.stringValue ?? "lww"))
        }
        self.init(region: region, tables: parsed)
        regionID = json["region_id"]?.int64Value.flatMap { (0...1023).contains($0) ? Int($0) : nil }
    }
}

/// One pull: entries in seq order, the `after` for the next pull, and the hub's head seq.
public struct PullPage: Sendable, Hashable {
    public var entries: [LogEntry]
    public var next: Int64
    public var head: Int64

    public init(entries: [LogEntry], next: Int64, head: Int64) {
        self.entries = entries
        self.next = next
        self.head = head
    }

    public init(json: JSONValue) throws(AgentError) {
        guard let list = json["entries"]?.arrayValue, let next = json["next"]?.int64Value,
            let head = json["head"]?.int64Value
        else {
            throw AgentError(code: .invalidResponse, message: "pull response lacks entries, next or head")
        }
        do {
            entries = try list.map { value throws(CoreError) in try LogEntry(json: value) }
        } catch {
            throw AgentError(code: .invalidResponse, message: "pull response has an invalid entry: \(error)")
        }
        self.next = next
        self.head = head
    }
}

/// `POST /v1/agent-status` body: `{"outbox_depth":N,"apply_lag_seconds":X,"last_error":"…"|null,
/// "busy":{"what":"…","seconds":X}|null}`. `busy` is the agent's longest-running operation (an apply, a push,
/// a pull) once it has run for ``Agent/stuckAfter``.
public struct AgentStatus: Sendable, Hashable {
    public var outboxDepth: Int
    public var applyLagSeconds: Double
    public var lastError: String?
    public var busy: Busy?
    /// How the agent captures (`wal` or `trigger`), why, and the WAL its slot retains.
    public var capture: Capture?

    public struct Capture: Sendable, Hashable {
        public var mode: String
        public var reason: String
        public var retainedWALBytes: Int64?

        public init(mode: String, reason: String, retainedWALBytes: Int64?) {
            self.mode = mode
            self.reason = reason
            self.retainedWALBytes = retainedWALBytes
        }
    }

    /// An operation that has been running for a while.
    public struct Busy: Sendable, Hashable {
        public var what: String
        public var seconds: Double

        public init(what: String, seconds: Double) {
            self.what = what
            self.seconds = seconds
        }
    }

    public init(outboxDepth: Int, applyLagSeconds: Double, lastError: String?, busy: Busy? = nil) {
        self.outboxDepth = outboxDepth
        self.applyLagSeconds = applyLagSeconds
        self.lastError = lastError
        self.busy = busy
    }

    public var json: JSONValue {
        let lag = applyLagSeconds.isFinite ? max(0, applyLagSeconds) : 0
        return .object([
            "outbox_depth": .integer(outboxDepth),
            "apply_lag_seconds": .number(Self.milli(lag)),
            "last_error": lastError.map(JSONValue.string) ?? .null,
            "busy": busy.map { .object(["what": .string($0.what), "seconds": .number(Self.milli($0.seconds))]) } ?? .null,
            "capture": capture.map { capture in
                .object([
                    "mode": .string(capture.mode), "reason": .string(capture.reason),
                    "retained_wal_bytes": capture.retainedWALBytes.map(JSONValue.integer) ?? .null,
                ])
            } ?? .null,
        ])
    }

    /// `x` rounded to milliseconds, as JSON number text.
    private static func milli(_ x: Double) -> String { String((x * 1000).rounded() / 1000) }
}
