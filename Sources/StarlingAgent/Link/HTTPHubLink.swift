public import StarlingCore
import StarlingHTTP2
import Synchronization

/// ``HubLink`` over our HTTP/2 client (TLS with the configured CA, or h2c for loopback tests), with the
/// region's bearer token on every request. Bodies are canonical JSON (gzip above the client's threshold).
///
/// Endpoints beyond DESIGN.md's table (the hub implements them):
/// * `POST /v1/tables/register` `{"tables":[{"name":"public.items","columns":[{"name":"id","type":"bigint"},…],
///   "key":["id"]}]}` → 200 `{}`; 409 `{"error":{"code":"schema_mismatch","message":"…table…column…"}}` when a
///   shape differs from the first registration (columns compared by name and type, in any order; key in order).
/// * `POST /v1/agent-status` `{"outbox_depth":N,"apply_lag_seconds":X,"last_error":"…"|null}` → 200/204.
/// * `POST /v1/dead-letters` `{"dead_letters":[{"id":N,"seq":N,"table":"…","entry":{…},"sqlstate":"23505"|null,
///   "error":"…"}]}` → 200; idempotent on (region, id); each becomes a recorded conflict.
///
/// With several hub URLs (`hub: [a, b]`) requests go to the active hub and fail over as ``HubEndpoints`` says.
public final class HTTPHubLink: HubLink {
    private let endpoints: HubEndpoints
    private let requestTimeout: Duration
    /// The region's log history (``attach(_:)``): pulls and pushes name what it knows, and record what the
    /// answers say (a pull page's `next` and term, the seqs and term of a push's verdicts).
    private let history = Mutex<LogHistory?>(nil)

    /// Connects lazily. `ca` is required for https (verified against it, server name from the URL).
    public init(configuration: AgentConfiguration) throws(AgentError) {
        var headers = HTTPHeaders()
        headers.add("authorization", "Bearer \(configuration.token)")
        headers.add("content-type", "application/json")
        requestTimeout = .milliseconds(configuration.tuning.requestTimeoutMs)
        endpoints = try HubEndpoints(
            urls: configuration.hubs, ca: configuration.ca, headers: headers, requestTimeout: requestTimeout,
            compression: configuration.compression)
    }

    /// The hub URL requests go to now (the first of `hub:` until a failover).
    public var currentHub: String { endpoints.currentURL }

    /// Closes the connections and the clients' loop threads.
    public func shutdown() {
        endpoints.shutdown()
    }

    public func config() async throws(AgentError) -> HubConfig {
        let response = try await request("GET", "/v1/config")
        do {
            return try HubConfig(json: response)
        } catch {
            throw AgentError(code: .invalidResponse, message: "invalid /v1/config: \(error)")
        }
    }

    public func register(_ tables: [TableShape]) async throws(AgentError) {
        _ = try await request("POST", "/v1/tables/register", body: .object(["tables": .array(tables.map(\.json))]))
    }

    public func pushSchema(id: String, change: SchemaChange, columns: [TableShape.Column]) async throws(AgentError)
        -> SchemaAnswer
    {
        var body = change.json.objectValue ?? [:]
        body["id"] = .string(id)
        body["columns"] = TableShape(name: change.table, columns: columns, key: []).columnsJSON
        let response = try await request("POST", "/v1/tables/schema", body: .object(body))
        guard let seq = response["seq"]?.int64Value else {
            throw AgentError(code: .invalidResponse, message: "schema change response lacks \"seq\"")
        }
        return SchemaAnswer(seq: seq, isNew: response["new"]?.boolValue ?? false)
    }

    public func attach(_ history: LogHistory) {
        self.history.withLock { $0 = history }
    }

    /// `path` with the history's `known` and `term` added to its query.
    private func stamped(_ path: String) -> String {
        guard let items = history.withLock({ $0 })?.queryItems else { return path }
        // By byte: String.contains(String) is Foundation's search (1 % of an agent's CPU in W2 R=8).
        return path + (path.utf8.contains(UInt8(ascii: "?")) ? "&" : "?") + items
    }

    /// Records `newest`, a seq the hub's verdicts gave, with the term the answer names (`"term"`).
    private func learned(newest: Int64, response: JSONValue) {
        guard let history = history.withLock({ $0 }) else { return }
        let term = response["term"].flatMap { try? LogTerm(json: $0) }
        history.learned(seq: newest, term: term)
    }

    public func push(_ changes: [Change]) async throws(AgentError) -> [Verdict] {
        let response = try await request("POST", stamped("/v1/changes"), bytes: Self.pushBody(changes, chunk: nil))
        guard let results = response["results"]?.arrayValue else {
            throw AgentError(code: .invalidResponse, message: "push response lacks \"results\"")
        }
        let verdicts: [Verdict]
        do {
            verdicts = try results.map { value throws(CoreError) in try Verdict(json: value) }
        } catch {
            throw AgentError(code: .invalidResponse, message: "push response has an invalid verdict: \(error)")
        }
        learned(newest: verdicts.reduce(0) { max($0, $1.version) }, response: response)
        return verdicts
    }

    public func pushChunk(_ changes: ArraySlice<Change>, tx: String, first: Int, isLast: Bool)
        async throws(AgentError) -> ChunkAnswer
    {
        let chunk: JSONValue = .object(["tx": .string(tx), "first": .integer(Int64(first)), "last": .bool(isLast)])
        // The last chunk is answered once the whole transaction is sequenced: 1 ms per change of it on top.
        let timeout = requestTimeout + (isLast ? .milliseconds(first + changes.count) : .zero)
        let response = try await request(
            "POST", stamped("/v1/changes"), bytes: Self.pushBody(changes, chunk: chunk), timeout: timeout)
        if let staged = response["staged"] {
            return .staged(through: staged["through"]?.int64Value.map { Int($0) })
        }
        guard let transaction = response["transaction"] else {
            throw AgentError(code: .invalidResponse, message: "chunk response lacks \"staged\" or \"transaction\"")
        }
        do {
            let verdicts = try TransactionVerdicts(json: transaction)
            learned(newest: verdicts.newestSeq, response: response)
            return .completed(verdicts)
        } catch {
            throw AgentError(code: .invalidResponse, message: "chunk response has invalid verdicts: \(error)")
        }
    }

    public func pull(after: Int64, limit: Int, waitMs: Int) async throws(AgentError) -> PullPage {
        let body = try await requestBody(
            "GET", stamped("/v1/changes?after=\(after)&limit=\(limit)&wait_ms=\(waitMs)"),
            timeout: requestTimeout + .milliseconds(waitMs))
        do {
            // From the bytes: the row images stay JSON text all the way into the apply statement.
            let page = try PullPage(bytes: body)
            history.withLock({ $0 })?.learned(seq: page.next, term: page.term)
            return page
        } catch {
            throw AgentError(code: .invalidResponse, message: "invalid pull response: \(error)")
        }
    }

    public func snapshot(table: String, after: String?, limit: Int) async throws(AgentError) -> SnapshotPage {
        var path = "/v1/snapshot?table=\(PercentEncoding.encode(table))&limit=\(limit)"
        if let after { path += "&after=" + PercentEncoding.encode(after) }
        let response = try await request("GET", path)
        do {
            return try SnapshotPage(json: response)
        } catch {
            throw AgentError(code: .invalidResponse, message: "invalid snapshot page: \(error)")
        }
    }

    public func adopt(table: String, rows: Int64) async throws(AgentError) {
        _ = try await request("POST", "/v1/snapshot/adopt", body: ["table": .string(table), "rows": .integer(rows)])
    }

    public func reportStatus(_ status: AgentStatus) async throws(AgentError) {
        _ = try await request("POST", "/v1/agent-status", body: status.json)
    }

    public func reportDeadLetters(_ letters: [DeadLetter]) async throws(AgentError) {
        _ = try await request("POST", "/v1/dead-letters", body: .object(["dead_letters": .array(letters.map(\.json))]))
    }

    public func reconcileTask() async throws(AgentError) -> ReconcileTask? {
        try Self.task(try await request("GET", "/v1/reconcile/task"))
    }

    public func reconcileAnswer(_ answer: ReconcileAnswer) async throws(AgentError) -> ReconcileTask? {
        try Self.task(try await request("POST", "/v1/reconcile/answer", body: answer.json))
    }

    /// `{"task":{…}|null}`.
    private static func task(_ response: JSONValue) throws(AgentError) -> ReconcileTask? {
        guard let task = response["task"], !task.isNull else { return nil }
        do {
            return try ReconcileTask(json: task)
        } catch {
            throw AgentError(code: .invalidResponse, message: "invalid reconcile task: \(error)")
        }
    }

    /// Sends one request; 2xx bodies are parsed (empty → `{}`), other statuses become errors carrying the
    /// API error message.
    private func request(_ method: String, _ path: String, body: JSONValue? = nil, timeout: Duration? = nil)
        async throws(AgentError) -> JSONValue
    {
        try await request(method, path, bytes: body?.unorderedBytes() ?? [], timeout: timeout)
    }

    /// A push's body, `{"chunk":…,"changes":[…]}`, written straight from the changes (``Change/writeJSON(to:)``)
    /// rather than through a JSON value per change.
    static func pushBody(_ changes: some Collection<Change>, chunk: JSONValue?) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256 * changes.count + 64)
        output.append(contentsOf: "{".utf8)
        if let chunk {
            output.append(contentsOf: "\"chunk\":".utf8)
            JSONSerializer.writeUnordered(chunk, to: &output)
            output.append(UInt8(ascii: ","))
        }
        output.append(contentsOf: "\"changes\":[".utf8)
        for (index, change) in changes.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            change.writeJSON(to: &output)
        }
        output.append(contentsOf: "]}".utf8)
        return output
    }

    private func request(_ method: String, _ path: String, bytes body: [UInt8], timeout: Duration? = nil)
        async throws(AgentError) -> JSONValue
    {
        let bytes = try await requestBody(method, path, body: body, timeout: timeout)
        if bytes.isEmpty { return .object([:]) }
        do {
            return try JSONParser().parse(bytes)
        } catch {
            throw AgentError(code: .invalidResponse, message: "\(method) \(path): the body is not JSON")
        }
    }

    /// Sends one request; a 2xx answer's body as it came, other statuses become errors carrying the API error
    /// message.
    private func requestBody(_ method: String, _ path: String, body: [UInt8] = [], timeout: Duration? = nil)
        async throws(AgentError) -> [UInt8]
    {
        let request = HTTPClientRequest(method: method, path: path, body: body, timeout: timeout)
        let response = try await endpoints.send(request)
        guard (200..<300).contains(response.status) else {
            let parsed = response.body.isEmpty ? JSONValue.object([:]) : try? JSONParser().parse(response.body)
            let message = parsed?["error"]?["message"]?.stringValue ?? "status \(response.status)"
            // The hub's error code says what happened (its JSON error body); the status only how bad it is.
            let code: AgentError.Code =
                switch parsed?["error"]?["code"]?.stringValue {
                case "cursor_pruned": .cursorPruned
                case "schema_mismatch": .schemaMismatch
                case "adoption_refused": .adoptionRefused
                case "chunks_missing": .chunksMissing
                case "log_diverged": .logDiverged
                // The hub's table list changed since this agent read /v1/config (a reload): read it again.
                case "table_not_synced": .hubUnavailable
                default: response.status >= 500 || response.status == 429 ? .hubUnavailable : .hubRejected
                }
            throw AgentError(
                code: code, message: "\(method) \(path): \(message)", httpStatus: response.status,
                isRetryable: code == .hubUnavailable)
        }
        return response.body
    }
}
