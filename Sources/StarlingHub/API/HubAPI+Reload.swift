import StarlingCore
import StarlingHTTP2

/// `POST /v1/admin/reload` (admin): reads the hub's configuration file again and replaces the synced tables and
/// their policies (``HubReloader``). 200 with what changed (`added`, `removed`, `changed`, `restart_required`);
/// a file that does not validate answers 400 `invalid_configuration` naming the key, and nothing changes.
extension HubAPI {
    func reload() async throws -> HTTPResponse {
        let outcome = try await reloader.reload()
        return .json(200, outcome.json.serialized())
    }
}
