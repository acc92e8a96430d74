import StarlingCore
import StarlingHTTP2

/// Row metadata, for the admin: `GET /v1/rows/{table}?key={…}&limit=N` (the key's version, source region and
/// last sync time, its newest log entries and its conflicts; `starling admin history`).
extension HubAPI {
    /// `GET /v1/rows/{table}`: 404 for a table that is not synced, 400 for a key that is not a JSON object.
    func rowHistory(_ request: HubRequest) async throws -> HTTPResponse {
        guard let table = request.pathParameters["table"], settings.tables.contains(where: { $0.name == table }) else {
            throw HTTPError(404, code: "not_found", "no such synced table")
        }
        guard let keyText = request.query["key"] else {
            throw HTTPError(400, code: "invalid_request", "key is required: the row's primary key as a JSON object")
        }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: keyText)
        } catch {
            throw HTTPError(400, code: "invalid_request", "key is not JSON: \(error.message)")
        }
        guard case .object(let object) = value, !object.isEmpty else {
            throw HTTPError(400, code: "invalid_request", "key must be a non-empty JSON object")
        }
        // The canonical text the log and the heads store.
        let key = HubJSON.text(object)
        let limit = Int(try Self.integer(request.query["limit"], name: "limit", default: 100, range: 1...1000))
        let body = try await pool.withConnection { connection in
            try HubStore.rowHistory(connection, table: table, key: key, limit: limit)
        }
        return .json(200, body.serialized())
    }
}
