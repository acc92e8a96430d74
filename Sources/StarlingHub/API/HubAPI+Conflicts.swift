import StarlingCore
import StarlingHTTP2

/// Conflicts, for the admin: `GET /v1/conflicts?status=open|all&after=ID&limit=N` (recorded conflicts with both
/// images, paged by id) and `POST /v1/conflicts/{id}/resolve` (a manual pick, sequenced as a new log entry).
extension HubAPI {
    /// `GET /v1/conflicts`: a page of conflicts after `after`, open ones only unless `status=all`.
    func conflicts(_ request: HubRequest) async throws -> HTTPResponse {
        let query = request.query
        let openOnly: Bool
        switch query["status"] ?? "open" {
        case "open": openOnly = true
        case "all": openOnly = false
        case let other: throw HTTPError(400, code: "invalid_request", "status must be open or all, not \"\(other)\"")
        }
        let after = try Self.integer(query["after"], name: "after", default: 0, range: 0...Int64.max)
        let limit = Int(try Self.integer(query["limit"], name: "limit", default: 100, range: 1...1000))
        let records = try await pool.withConnection { connection in
            try HubStore.conflicts(connection, openOnly: openOnly, after: after, limit: limit)
        }
        let body: JSONValue = [
            "conflicts": .array(records.map(\.json)), "next": .integer(records.last?.id ?? after),
        ]
        return .json(200, body.serialized())
    }

    /// `POST /v1/conflicts/{id}/resolve`: the admin's pick (or row) is sequenced as a new log entry.
    func resolve(_ request: HubRequest) async throws -> HTTPResponse {
        guard let idText = request.pathParameters["id"], let id = Int64(idText), id > 0 else {
            throw HTTPError(404, code: "not_found", "no such conflict")
        }
        let pick: ManualPick
        do {
            pick = try ManualPick(json: try JSONValue(parsing: request.body))
        } catch {
            throw HTTPError(400, code: error.code.rawValue, error.message)
        }
        let outcome = try await sequencer.resolve(conflictID: id, pick: pick, actor: "admin")
        logger.info("conflict resolved", metadata: ["conflict.id": "\(id)", "seq": "\(outcome.entry.seq)"])
        let body: JSONValue = ["conflict": outcome.record.json, "entry": outcome.entry.json]
        return .json(200, body.serialized())
    }
}
