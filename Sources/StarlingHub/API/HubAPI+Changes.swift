import StarlingCore
import StarlingHTTP2
import StarlingIO

/// The log's two region endpoints: `POST /v1/changes` (push: validated whole, then sequenced; verdicts in
/// order) and `GET /v1/changes?after=SEQ&limit=N&wait_ms=MS` (pull: a page of entries after the cursor,
/// long-polling up to `wait_ms` when nothing is new).
extension HubAPI {
    /// `POST /v1/changes`: the whole push is validated, then sequenced; one verdict per change, in order.
    func push(_ request: HubRequest) async throws -> HTTPResponse {
        let region = request.region
        let started = clock.monotonicNanos()
        let body = try parseBody(request.body)
        try checkLogHistory(request.query)
        if let chunk = body["chunk"] { return try await pushChunk(chunk, body: body, region: region) }
        let changes = try parseChanges(body, region: region)
        activity.pushed(region, at: clock.wallClockMicros())
        let verdicts = try await sequencer.submit(region: region, changes: changes)
        var output: [UInt8] = []
        output.reserveCapacity(verdicts.count * 48 + 16)
        output.append(contentsOf: #"{"results":["#.utf8)
        for (index, verdict) in verdicts.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            verdict.write(to: &output)
        }
        output.append(UInt8(ascii: "]"))
        appendCurrentTerm(to: &output)
        output.append(UInt8(ascii: "}"))
        metrics.recordPush(seconds: Double(clock.monotonicNanos() - started) / 1e9)
        return .json(200, output)
    }

    /// Validates a whole push before anything is queued: 400 naming the change and reason, 403 for a change
    /// claiming another region. Images are checked against the table's registered shape (no unknown column;
    /// every image holds the key's columns with the key's values, as every change must). One bad change refuses
    /// the whole push, not just that change: a push holds whole origin transactions, which must not be split,
    /// and an image that does not fit the shape means the agent is out of step with the table (its outbox keeps
    /// everything, its status shows the hub's message); nothing is stored, so nothing is half-applied anywhere.
    func parseChanges(_ value: JSONValue, region: String) throws(HTTPError) -> [Change] {
        let items = try changeItems(value)
        let limits = settings.limits
        guard items.count <= limits.maxTransactionChanges else {
            throw HTTPError(
                413, code: "too_many_changes",
                "\(items.count) changes in one push; the limit is \(limits.maxPushChanges), and "
                    + "\(limits.maxTransactionChanges) for a push of one origin transaction "
                    + "(limits.max_transaction_changes)")
        }
        let changes = try validate(items, region: region)
        if changes.count > limits.maxPushChanges, let first = changes.first,
            changes.contains(where: { $0.tx != first.tx })
        {
            throw HTTPError(
                413, code: "too_many_changes",
                "\(changes.count) changes of several transactions in one push; the limit is \(limits.maxPushChanges) "
                    + "(only a push of one origin transaction may hold up to \(limits.maxTransactionChanges))")
        }
        return changes
    }

    /// The body as JSON (400 `malformed_json` otherwise), within `max_body_bytes`.
    func parseBody(_ body: [UInt8]) throws(HTTPError) -> JSONValue {
        do {
            return try JSONParser(limits: .init(maxDepth: 64, maxBytes: settings.limits.maxBodyBytes)).parse(body)
        } catch {
            let at = error.offset.map { " at byte \($0)" } ?? ""
            throw HTTPError(400, code: "malformed_json", "the body is not valid JSON: \(error.message)\(at)")
        }
    }

    /// The body's `changes` array (400 when it has none).
    func changeItems(_ value: JSONValue) throws(HTTPError) -> [JSONValue] {
        guard case .array(let items)? = value["changes"] else {
            throw HTTPError(400, code: "invalid_request", #"the body must be {"changes":[…]}"#)
        }
        return items
    }

    /// Decodes and checks each change against its table's registered shape; `firstIndex` numbers the changes
    /// in errors (a chunk's changes by their ordinal in the transaction).
    func validate(_ items: [JSONValue], region: String, firstIndex: Int = 0) throws(HTTPError) -> [Change] {
        let shapes = self.shapes.current
        var changes: [Change] = []
        changes.reserveCapacity(items.count)
        for (offset, item) in items.enumerated() {
            let index = firstIndex + offset
            let shape = item["table"]?.stringValue.flatMap { shapes[$0] }
            var change: Change
            do {
                change = try Change(json: item, requiredRegion: region, keyColumns: shape?.key)
                if let shape {
                    // Captured before its region applied a schema change: read with the names in force.
                    change = change.conformed(to: shape.rules, columns: shape.columnNames)
                    try change.check(columns: shape.columnNames)
                    try change.check(kinds: shape.columnKinds, types: shape.columnTypes)
                }
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
        return changes
    }

    /// `GET /v1/changes`: entries after `after` (from the log cache when it holds them), long-polling up to
    /// `wait_ms` (capped by `limits.max_wait_ms`) while nothing is new; 410 below the retained log.
    func pull(_ request: HubRequest) async throws -> HTTPResponse {
        let region = request.region
        let query = request.query
        let after = try Self.integer(query["after"], name: "after", default: 0, range: 0...Int64.max)
        let limits = settings.limits
        let limit = Int(
            try Self.integer(
                query["limit"], name: "limit", default: Int64(limits.defaultPullLimit), range: 1...Int64.max))
        let waitMs = try Self.integer(query["wait_ms"], name: "wait_ms", default: 0, range: 0...Int64.max)
        let pageLimit = min(limit, limits.maxPullLimit)
        let deadline = clock.monotonicNanos() + UInt64(min(waitMs, Int64(limits.maxWaitMs))) * 1_000_000
        try checkNotPruned(after: after)
        try checkLogHistory(query)
        activity.pulled(region, cursor: after, at: clock.wallClockMicros())
        var cursor = after
        var page = HubStore.PullPage(entriesJSON: [], count: 0, lastScanned: after)
        while true {
            var head = notifier.head
            let now = clock.monotonicNanos()
            if head <= cursor && now < deadline {
                head = await notifier.wait(after: cursor, timeout: .nanoseconds(Int64(deadline - now)))
            }
            guard head > cursor else { break }
            let from = cursor
            if let cached = logCache.page(after: from, limit: pageLimit, region: region) {
                page = cached
            } else {
                let through = head
                page = try await pool.withConnection { connection in
                    try HubStore.pull(connection, region: region, after: from, through: through, limit: pageLimit)
                }
            }
            cursor = page.lastScanned
            if page.count > 0 || clock.monotonicNanos() >= deadline { break }
        }
        var output: [UInt8] = []
        PullPage.write(
            entriesJSON: page.entriesJSON, head: max(notifier.head, cursor), next: cursor, term: term(holding: cursor),
            to: &output)
        return .json(200, output)
    }


    /// 410 `cursor_pruned` when entries after `after` were dropped by retention.
    func checkNotPruned(after: Int64) throws(HTTPError) {
        let pruned = retention.prunedThrough
        guard after < pruned else { return }
        throw HTTPError(
            410, code: "cursor_pruned",
            "entries up to seq \(pruned) were pruned; cursor \(after) is behind the retained log: "
                + "re-bootstrap from GET /v1/snapshot")
    }
}
