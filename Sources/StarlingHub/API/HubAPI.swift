import Logging
import StarlingCore
import StarlingHTTP2
import StarlingIO
import StarlingPostgres
import Synchronization

/// The hub's HTTP API (DESIGN.md "Interfaces"): builds the router and implements every handler.
///
/// Handlers that touch Postgres are `.async` and go through the read pool or the sequencer, never blocking a
/// loop. Every error leaves as the API's JSON error shape via ``HTTPError``.
final class HubAPI: Sendable {
    let settings: HubSettings
    let auth: HubAuth
    let sequencer: Sequencer
    let pool: PostgresPool
    let notifier: CommitNotifier
    /// The newest entries, encoded once: pulls inside its range skip the database.
    let logCache: LogCache
    let activity: RegionActivity
    let metrics: HubMetrics
    /// Active or standby (`HubRole`): reported by `/v1/status`.
    let role: HubRole
    /// Log retention: what was pruned (pulls below it get 410 `cursor_pruned`).
    let retention: LogRetention
    /// Registered table shapes, refreshed by the hub's background loop.
    let shapes = Mutex<[String: TableShape]>([:])
    /// The server's counters once it exists (for /metrics).
    let serverCounters = Mutex<HTTP2ServerCounters?>(nil)
    /// Reconciliation runs (started here or by the schedule, which runs in ``Hub/run()``).
    let reconciler: Reconciler
    private let logger: Logger

    init(
        settings: HubSettings, sequencer: Sequencer, pool: PostgresPool, notifier: CommitNotifier,
        logCache: LogCache, activity: RegionActivity, metrics: HubMetrics, role: HubRole, retention: LogRetention,
        logger: Logger
    ) {
        self.logCache = logCache
        self.role = role
        self.retention = retention
        self.settings = settings
        self.auth = HubAuth(settings: settings)
        self.sequencer = sequencer
        self.pool = pool
        self.notifier = notifier
        self.activity = activity
        self.metrics = metrics
        self.logger = logger
        self.reconciler = Reconciler(settings: settings, pool: pool, sequencer: sequencer, metrics: metrics, logger: logger)
    }

    /// Every route of the API.
    func makeRouter() -> Router {
        var router = Router()
        router.add("GET", "/healthz", .immediate { _ in .json(200, Array(#"{"status":"ok"}"#.utf8)) })
        router.add("GET", "/v1/config", .immediate { [self] request in try config(request) })
        router.add("POST", "/v1/changes", .async { [self] request in try await push(request) })
        router.add("GET", "/v1/changes", .async { [self] request in try await pull(request) })
        router.add("POST", "/v1/agent-status", .immediate { [self] request in try agentStatus(request) })
        router.add("POST", "/v1/tables/register", .async { [self] request in try await register(request) })
        router.add("POST", "/v1/dead-letters", .async { [self] request in try await deadLetters(request) })
        router.add("GET", "/v1/status", .async { [self] request in try await status(request) })
        router.add("GET", "/v1/conflicts", .async { [self] request in try await conflicts(request) })
        router.add("POST", "/v1/conflicts/{id}/resolve", .async { [self] request in try await resolve(request) })
        router.add("GET", "/metrics", .async { [self] _ in try await metricsText() })
        addOperatorRoutes(to: &router)
        addBootstrapRoutes(to: &router)
        addReconcileRoutes(to: &router, reconciler: reconciler)
        return router
    }

    // MARK: - Region endpoints

    private func config(_ request: HTTPRequest) throws -> HTTPResponse {
        let region = try auth.region(request)
        let shapes = self.shapes.withLock { $0 }
        var tables: [JSONValue] = []
        for table in settings.tables {
            var object: JSONObject = ["name": .string(table.name), "policy": .string(table.policy.name)]
            if case .manual(let provisional) = table.policy {
                object["manual_provisional"] = .string(provisional == .lww ? "lww" : "keep")
            }
            if let shape = shapes[table.name] {
                object["key_columns"] = .array(shape.keyColumns.map(JSONValue.string))
                object["columns"] = (try? JSONValue(parsing: shape.columnsJSON)) ?? .null
            }
            tables.append(.object(object))
        }
        var body: JSONObject = ["region": .string(region), "tables": .array(tables)]
        if let id = settings.regions.first(where: { $0.name == region })?.id { body["region_id"] = .integer(id) }
        return .json(200, JSONValue.object(body).serialized())
    }

    private func push(_ request: HTTPRequest) async throws -> HTTPResponse {
        let region = try auth.region(request)
        let started = Syscall.monotonicNanos()
        let changes = try parseChanges(request.body, region: region)
        activity.pushed(region, at: Syscall.wallClockMicros())
        let verdicts: [Verdict]
        do {
            verdicts = try await sequencer.submit(region: region, changes: changes)
        } catch {
            throw Self.httpError(error)
        }
        var output: [UInt8] = []
        output.reserveCapacity(verdicts.count * 48 + 16)
        output.append(contentsOf: #"{"results":["#.utf8)
        for (index, verdict) in verdicts.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            verdict.write(to: &output)
        }
        output.append(contentsOf: "]}".utf8)
        metrics.recordPush(seconds: Double(Syscall.monotonicNanos() - started) / 1e9)
        return .json(200, output)
    }

    /// Validates a whole push before anything is queued: 400 naming the change and reason, 403 for a change
    /// claiming another region. Images are checked against the table's registered shape (no unknown column;
    /// every image holds the key's columns with the key's values, as every change must). One bad change refuses
    /// the whole push, not just that change: a push holds whole origin transactions, which must not be split,
    /// and an image that does not fit the shape means the agent is out of step with the table (its outbox keeps
    /// everything, its status shows the hub's message); nothing is stored, so nothing is half-applied anywhere.
    func parseChanges(_ body: [UInt8], region: String) throws(HTTPError) -> [Change] {
        let value: JSONValue
        do {
            value = try JSONParser(limits: .init(maxDepth: 64, maxBytes: settings.limits.maxBodyBytes)).parse(body)
        } catch {
            let at = error.offset.map { " at byte \($0)" } ?? ""
            throw HTTPError(400, code: "malformed_json", "the body is not valid JSON: \(error.message)\(at)")
        }
        guard case .array(let items)? = value["changes"] else {
            throw HTTPError(400, code: "invalid_request", #"the body must be {"changes":[…]}"#)
        }
        let limits = settings.limits
        guard items.count <= limits.maxTransactionChanges else {
            throw HTTPError(
                413, code: "too_many_changes",
                "\(items.count) changes in one push; the limit is \(limits.maxPushChanges), and "
                    + "\(limits.maxTransactionChanges) for a push of one origin transaction "
                    + "(limits.max_transaction_changes)")
        }
        let shapes = self.shapes.withLock { $0 }
        var changes: [Change] = []
        changes.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            let shape = item["table"]?.stringValue.flatMap { shapes[$0] }
            let change: Change
            do {
                change = try Change(json: item, requiredRegion: region, keyColumns: shape?.keyColumns)
                if let shape { try change.check(columns: shape.columns) }
            } catch {
                let prefixed = error.prefixed(with: "changes[\(index)]")
                let status = error.code == .forbiddenRegion ? 403 : 400
                throw HTTPError(status, code: error.code.rawValue, "\(prefixed.field ?? ""): \(error.message)")
            }
            guard settings.tablesByName[change.table] != nil else {
                throw HTTPError(
                    400, code: "invalid_change", "changes[\(index)].table: table \"\(change.table)\" is not synced")
            }
            changes.append(change)
        }
        if changes.count > limits.maxPushChanges, let first = changes.first, changes.contains(where: { $0.tx != first.tx }) {
            throw HTTPError(
                413, code: "too_many_changes",
                "\(changes.count) changes of several transactions in one push; the limit is \(limits.maxPushChanges) "
                    + "(only a push of one origin transaction may hold up to \(limits.maxTransactionChanges))")
        }
        return changes
    }

    private func pull(_ request: HTTPRequest) async throws -> HTTPResponse {
        let region = try auth.region(request)
        let query = request.query
        let after = try Self.integer(query["after"], name: "after", default: 0, range: 0...Int64.max)
        let limits = settings.limits
        let limit = Int(
            try Self.integer(
                query["limit"], name: "limit", default: Int64(limits.defaultPullLimit), range: 1...Int64.max))
        let waitMs = try Self.integer(query["wait_ms"], name: "wait_ms", default: 0, range: 0...Int64.max)
        let pageLimit = min(limit, limits.maxPullLimit)
        let deadline = Syscall.monotonicNanos() + UInt64(min(waitMs, Int64(limits.maxWaitMs))) * 1_000_000
        try checkNotPruned(after: after)
        activity.pulled(region, cursor: after, at: Syscall.wallClockMicros())
        var cursor = after
        var page = HubStore.PullPage(entriesJSON: [], count: 0, lastScanned: after)
        while true {
            var head = notifier.head
            let now = Syscall.monotonicNanos()
            if head <= cursor && now < deadline {
                head = await notifier.wait(after: cursor, timeout: .nanoseconds(Int64(deadline - now)))
            }
            guard head > cursor else { break }
            let from = cursor
            if let cached = logCache.page(after: from, limit: pageLimit, region: region) {
                page = cached
            } else {
                do {
                    page = try await pool.withConnection { connection in
                        try HubStore.pull(connection, region: region, after: from, limit: pageLimit)
                    }
                } catch {
                    throw Self.httpError(error)
                }
            }
            cursor = page.lastScanned
            if page.count > 0 || Syscall.monotonicNanos() >= deadline { break }
        }
        var output: [UInt8] = Array(#"{"entries":["#.utf8)
        output.append(contentsOf: page.entriesJSON)
        output.append(contentsOf: #"],"head":"#.utf8)
        JSONSerializer.writeInt64(max(notifier.head, cursor), to: &output)
        output.append(contentsOf: #","next":"#.utf8)
        JSONSerializer.writeInt64(cursor, to: &output)
        output.append(UInt8(ascii: "}"))
        return .json(200, output)
    }

    private func agentStatus(_ request: HTTPRequest) throws -> HTTPResponse {
        let region = try auth.region(request)
        let value: JSONValue
        do {
            value = try JSONValue(parsing: request.body)
        } catch {
            throw HTTPError(400, code: "malformed_json", "the body is not valid JSON: \(error.message)")
        }
        guard case .object = value else { throw HTTPError(400, code: "invalid_request", "the body must be an object") }
        let now = Syscall.wallClockMicros()
        let busy = value["busy"].flatMap { busy -> RegionActivity.Busy? in
            guard let what = busy["what"]?.stringValue, let seconds = busy["seconds"]?.numberText.flatMap(Double.init),
                seconds.isFinite, seconds >= 0, seconds < 1e9
            else { return nil }
            return RegionActivity.Busy(what: String(what.prefix(500)), sinceMicros: now - Int64(seconds * 1_000_000))
        }
        activity.reported(
            region, outboxDepth: value["outbox_depth"]?.int64Value,
            applyLag: (value["apply_lag_seconds"] ?? value["apply_lag"])?.numberText.flatMap(Double.init),
            lastError: value["last_error"]?.stringValue, busy: busy, at: now)
        return .json(200, Array(#"{"status":"ok"}"#.utf8))
    }

    /// `POST /v1/tables/register`: 200 when every table matches (or was registered now), 409
    /// `schema_mismatch` naming the table and column otherwise (``HubRegistry``).
    private func register(_ request: HTTPRequest) async throws -> HTTPResponse {
        let region = try auth.region(request)
        let tables = try HubRegistry.parseRegistrations(request.body, settings: settings)
        let mismatch: String?
        let shapes: [String: TableShape]
        do {
            (mismatch, shapes) = try await pool.withConnection { connection in
                let mismatch = try HubRegistry.register(tables, region: region, connection: connection)
                return (mismatch, try HubStore.loadShapes(connection))
            }
        } catch {
            throw Self.httpError(error)
        }
        self.shapes.withLock { $0 = shapes }
        if let mismatch {
            logger.error("schema mismatch", metadata: ["region": "\(region)", "error": "\(mismatch)"])
            throw HTTPError(409, code: "schema_mismatch", mismatch)
        }
        return .json(200, Array(#"{"status":"ok"}"#.utf8))
    }

    /// `POST /v1/dead-letters`: records each letter as an open conflict (idempotent on region and id).
    private func deadLetters(_ request: HTTPRequest) async throws -> HTTPResponse {
        let region = try auth.region(request)
        let letters = try HubRegistry.parseDeadLetters(request.body, settings: settings)
        guard !letters.isEmpty else { return .json(200, Array(#"{"conflicts":[]}"#.utf8)) }
        let ids: [Int64]
        do {
            ids = try await sequencer.recordDeadLetters(region: region, letters: letters)
        } catch {
            throw Self.httpError(error)
        }
        logger.warning("dead letters reported", metadata: ["region": "\(region)", "count": "\(letters.count)"])
        // A retried report (the agent did not see our answer) counts again: the counter may run slightly high.
        for (table, group) in Dictionary(grouping: letters, by: \.table) {
            metrics.recordDeadLetters(region: region, table: table, count: group.count)
        }
        let body: JSONValue = ["conflicts": .array(ids.map(JSONValue.integer))]
        return .json(200, body.serialized())
    }

    // MARK: - Admin endpoints

    private func status(_ request: HTTPRequest) async throws -> HTTPResponse {
        try auth.admin(request)
        let head = notifier.head
        let figures = try await regionFigures(head: head)
        let snapshot = activity.snapshot()
        let now = Syscall.wallClockMicros()
        let counts: (open: Int64, total: Int64)
        do {
            counts = try await pool.withConnection { try HubStore.conflictCounts($0) }
        } catch {
            throw Self.httpError(error)
        }
        var regions: [JSONValue] = []
        for figure in figures {
            let entry = snapshot[figure.name] ?? RegionActivity.Entry()
            regions.append([
                "name": .string(figure.name), "cursor": .integer(figure.cursor),
                "lag_entries": .integer(figure.lagEntries), "lag_seconds": .number(Self.decimal(figure.lagSeconds)),
                "outbox_depth": entry.outboxDepth.map(JSONValue.integer) ?? .null,
                "apply_lag": entry.applyLag.map { .number(Self.decimal($0)) } ?? .null,
                "apply_lag_seconds": entry.applyLag.map { .number(Self.decimal($0)) } ?? .null,
                "last_push_at": entry.lastPushAt.map { .string(HubJSON.iso8601(micros: $0)) } ?? .null,
                "last_pull_at": entry.lastPullAt.map { .string(HubJSON.iso8601(micros: $0)) } ?? .null,
                "last_error": entry.lastError.map(JSONValue.string) ?? .null,
                // A report older than a minute is an agent gone silent, not one still busy.
                "busy": entry.busy.flatMap { (entry.reportedAt ?? 0) > now - 60_000_000 ? $0 : nil }.map { busy in
                    .object([
                        "what": .string(busy.what), "since": .string(HubJSON.iso8601(micros: busy.sinceMicros)),
                        "seconds": .number(Self.decimal(Double(now - busy.sinceMicros) / 1_000_000)),
                    ])
                } ?? .null,
            ])
        }
        var body: JSONObject = [
            "head": .integer(head), "regions": .array(regions),
            "conflicts": ["open": .integer(counts.open), "total": .integer(counts.total)],
        ]
        body.merge(role.statusFields) { current, _ in current }
        return .json(200, JSONValue.object(body).serialized())
    }

    /// Cursor and lag of every configured region, in configuration order.
    private func regionFigures(head: Int64) async throws -> [HubMetrics.RegionFigures] {
        let snapshot = activity.snapshot()
        let behind = settings.regions.compactMap { region -> Int64? in
            let cursor = snapshot[region.name]?.cursor ?? 0
            return cursor < head ? cursor + 1 : nil
        }
        let times: [Int64: Int64]
        do {
            times = try await pool.withConnection { try HubStore.commitTimes($0, seqs: behind) }
        } catch {
            throw Self.httpError(error)
        }
        let now = Syscall.wallClockMicros()
        return settings.regions.map { region in
            let entry = snapshot[region.name] ?? RegionActivity.Entry()
            let lagSeconds =
                entry.cursor < head ? times[entry.cursor + 1].map { max(0, Double(now - $0) / 1e6) } ?? 0 : 0
            return HubMetrics.RegionFigures(
                name: region.name, cursor: entry.cursor, lagEntries: max(0, head - entry.cursor),
                lagSeconds: lagSeconds, lastPushAt: entry.lastPushAt, lastPullAt: entry.lastPullAt)
        }
    }

    private func conflicts(_ request: HTTPRequest) async throws -> HTTPResponse {
        try auth.admin(request)
        let query = request.query
        let openOnly: Bool
        switch query["status"] ?? "open" {
        case "open": openOnly = true
        case "all": openOnly = false
        case let other: throw HTTPError(400, code: "invalid_request", "status must be open or all, not \"\(other)\"")
        }
        let after = try Self.integer(query["after"], name: "after", default: 0, range: 0...Int64.max)
        let limit = Int(try Self.integer(query["limit"], name: "limit", default: 100, range: 1...1000))
        let records: [ConflictRecord]
        do {
            records = try await pool.withConnection { connection in
                try HubStore.conflicts(connection, openOnly: openOnly, after: after, limit: limit)
            }
        } catch {
            throw Self.httpError(error)
        }
        let body: JSONValue = [
            "conflicts": .array(records.map(\.json)), "next": .integer(records.last?.id ?? after),
        ]
        return .json(200, body.serialized())
    }

    private func resolve(_ request: HTTPRequest) async throws -> HTTPResponse {
        try auth.admin(request)
        guard let idText = request.pathParameters["id"], let id = Int64(idText), id > 0 else {
            throw HTTPError(404, code: "not_found", "no such conflict")
        }
        let pick: ManualPick
        do {
            pick = try ManualPick(json: try JSONValue(parsing: request.body))
        } catch {
            throw HTTPError(400, code: error.code.rawValue, error.message)
        }
        let outcome: Sequencer.ResolveOutcome
        do {
            outcome = try await sequencer.resolve(conflictID: id, pick: pick, actor: "admin")
        } catch {
            throw Self.httpError(error)
        }
        logger.info("conflict resolved", metadata: ["conflict.id": "\(id)", "seq": "\(outcome.entry.seq)"])
        let body: JSONValue = ["conflict": outcome.record.json, "entry": outcome.entry.json]
        return .json(200, body.serialized())
    }

    private func metricsText() async throws -> HTTPResponse {
        let head = notifier.head
        let figures = try await regionFigures(head: head)
        let counters = serverCounters.withLock { $0 }?.snapshot()
        let text = metrics.render(head: head, regions: figures, waiting: notifier.waiterCount, http: counters)
        return HTTPResponse(status: 200, headers: ["content-type": "text/plain; version=0.0.4"], body: text)
    }

    // MARK: - Helpers

    static func integer(_ text: String?, name: String, default fallback: Int64, range: ClosedRange<Int64>)
        throws(HTTPError) -> Int64
    {
        guard let text else { return fallback }
        guard let value = Int64(text), range.contains(value) else {
            throw HTTPError(400, code: "invalid_request", "\(name) must be an integer in \(range), not \"\(text)\"")
        }
        return value
    }

    static func decimal(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let scaled = (value * 1000).rounded() / 1000
        let text = String(scaled)
        return text.contains("e") ? "0" : text
    }

    /// The HTTP form of a hub or storage error.
    static func httpError(_ error: any Error) -> HTTPError {
        if let error = error as? HTTPError { return error }
        if let error = error as? HubError {
            switch error.code {
            case .overloaded, .shuttingDown, .storageFailed, .standby:
                return HTTPError(503, code: error.code.rawValue, error.message, headers: ["retry-after": "1"])
            case .notFound: return HTTPError(404, code: error.code.rawValue, error.message)
            case .alreadyResolved: return HTTPError(409, code: error.code.rawValue, error.message)
            default: return HTTPError(400, code: error.code.rawValue, error.description)
            }
        }
        return HTTPError(503, code: "storage_failed", "\(error)", headers: ["retry-after": "1"])
    }
}
