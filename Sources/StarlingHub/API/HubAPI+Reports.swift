import StarlingCore
import StarlingHTTP2
import StarlingIO

/// What agents report: `POST /v1/agent-status` (outbox depth, apply lag, last error, what keeps the agent busy;
/// shown by `/v1/status` and the dashboard) and `POST /v1/dead-letters` (entries a region could not apply,
/// recorded as open conflicts).
extension HubAPI {
    /// `POST /v1/agent-status`: the agent's own figures, kept in memory for `/v1/status` (on the loop).
    func agentStatus(_ request: HubRequest) throws -> HTTPResponse {
        let region = request.region
        let value = try Self.jsonBody(request.body)
        guard case .object = value else { throw HTTPError(400, code: "invalid_request", "the body must be an object") }
        let status = AgentStatus(json: value)
        let now = clock.wallClockMicros()
        // Texts are cut to bound what a region keeps in the hub's memory and its regions table.
        let busy = status.busy.map {
            RegionActivity.Busy(what: String($0.what.prefix(500)), sinceMicros: now - Int64($0.seconds * 1_000_000))
        }
        let capture = status.capture.map {
            RegionActivity.Capture(
                mode: String($0.mode.prefix(16)), reason: String($0.reason.prefix(500)),
                retainedWALBytes: $0.retainedWALBytes)
        }
        activity.reported(
            region, outboxDepth: status.outboxDepth, applyLag: status.applyLagSeconds, lastError: status.lastError,
            busy: busy, capture: capture, at: now)
        return .json(200, Array(#"{"status":"ok"}"#.utf8))
    }

    /// `POST /v1/dead-letters`: records each letter as an open conflict (idempotent on region and id).
    func deadLetters(_ request: HubRequest) async throws -> HTTPResponse {
        let region = request.region
        let letters = try HubRegistry.parseDeadLetters(request.body, settings: settings)
        guard !letters.isEmpty else { return .json(200, Array(#"{"conflicts":[]}"#.utf8)) }
        let ids = try await sequencer.recordDeadLetters(region: region, letters: letters)
        logger.warning("dead letters reported", metadata: ["region": "\(region)", "count": "\(letters.count)"])
        // A retried report (the agent did not see our answer) counts again: the counter may run slightly high.
        for (table, group) in Dictionary(grouping: letters, by: \.table) {
            metrics.recordDeadLetters(region: region, table: table, count: group.count)
        }
        let body: JSONValue = ["conflicts": .array(ids.map(JSONValue.integer))]
        return .json(200, body.serialized())
    }
}
