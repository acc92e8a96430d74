import StarlingCore
import StarlingHTTP2
import StarlingIO

/// The hub's figures: `GET /v1/status` (admin: head, per-region cursor and lag, agent reports, conflict counts,
/// role) and `GET /metrics` (Prometheus text for the admin listener).
extension HubAPI {
    /// `GET /v1/status`: head, per-region figures and reports, conflict counts, the role.
    func status() async throws -> HTTPResponse {
        let head = notifier.head
        let figures = try await regionFigures(head: head)
        let snapshot = activity.snapshot()
        let now = clock.wallClockMicros()
        let counts = try await pool.withConnection { try HubStore.conflictCounts($0) }
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
                "capture": entry.capture.map { capture in
                    .object([
                        "mode": .string(capture.mode), "reason": .string(capture.reason),
                        "retained_wal_bytes": capture.retainedWALBytes.map(JSONValue.integer) ?? .null,
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
    func regionFigures(head: Int64) async throws -> [HubMetrics.RegionFigures] {
        let snapshot = activity.snapshot()
        let behind = settings.regions.compactMap { region -> Int64? in
            let cursor = snapshot[region.name]?.cursor ?? 0
            return cursor < head ? cursor + 1 : nil
        }
        let times = try await pool.withConnection { try HubStore.commitTimes($0, seqs: behind) }
        let now = clock.wallClockMicros()
        return settings.regions.map { region in
            let entry = snapshot[region.name] ?? RegionActivity.Entry()
            let lagSeconds =
                entry.cursor < head ? times[entry.cursor + 1].map { max(0, Double(now - $0) / 1e6) } ?? 0 : 0
            return HubMetrics.RegionFigures(
                name: region.name, cursor: entry.cursor, lagEntries: max(0, head - entry.cursor),
                lagSeconds: lagSeconds, lastPushAt: entry.lastPushAt, lastPullAt: entry.lastPullAt,
                retainedWALBytes: entry.capture?.retainedWALBytes)
        }
    }

    /// `GET /metrics`: the hub's and the HTTP server's figures as Prometheus text.
    func metricsText() async throws -> HTTPResponse {
        let head = notifier.head
        let figures = try await regionFigures(head: head)
        let counters = serverCounters.snapshot()
        let text = metrics.render(head: head, regions: figures, waiting: notifier.waiterCount, http: counters)
        return HTTPResponse(status: 200, headers: ["content-type": "text/plain; version=0.0.4"], body: text)
    }
}
