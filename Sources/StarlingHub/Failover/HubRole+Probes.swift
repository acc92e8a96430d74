import StarlingCore
import StarlingHTTP2

/// The probes that report the role, for operators and load balancers. Which routes a standby serves at all is
/// declared in the route table (``HubRoute/OnStandby``); these two are served in both roles and answer it.
extension HubRole {
    /// `GET /healthz`: liveness. Always 200 while the process runs: `{"status":"ok","role":"active|standby"}`.
    func healthResponse() -> HTTPResponse {
        let body: JSONValue = ["status": "ok", "role": .string(snapshot.role.rawValue)]
        return .json(200, body.serialized())
    }

    /// `GET /readyz`: readiness. 200 `{"status":"ready","role":"active"}` on the active hub; 503 `standby`
    /// otherwise, so a load balancer in front of both hubs sends traffic to the active one only.
    func readyResponse() throws(HTTPError) -> HTTPResponse {
        try requireActive()
        let body: JSONValue = ["status": "ready", "role": .string(Role.active.rawValue)]
        return .json(200, body.serialized())
    }
}
