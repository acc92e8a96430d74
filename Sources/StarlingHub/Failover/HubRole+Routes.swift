import StarlingCore
import StarlingHTTP2

/// The role gate in front of the API's router: a standby answers only what is safe and useful for it.
///
/// The gate is a deny-by-default wrapper over every route ``HubAPI/makeRouter()`` registers: routes added
/// later (by other features) are refused on a standby without anyone remembering to check the role. The
/// exempt routes read nothing the sequencer owns in memory, or report the role itself.
extension HubRole {
    /// `METHOD path` of the routes a standby serves.
    static let standbyRoutes: Set<String> = [
        "GET /healthz", "GET /readyz", "GET /metrics", "GET /v1/status", "GET /", "GET /openapi.json",
    ]

    /// `router` with every non-exempt route refused (503 `standby`) while this hub is not active, `/healthz`
    /// answering the role and `/readyz` added (200 when active, 503 `standby` otherwise, for load balancers).
    func gate(_ router: Router) -> Router {
        var gated = Router()
        gated.add("GET", "/healthz", .immediate { [self] _ in healthResponse() })
        gated.add("GET", "/readyz", .immediate { [self] _ in try readyResponse() })
        for route in router.routes where route.pattern != "/healthz" && route.pattern != "/readyz" {
            if Self.standbyRoutes.contains(route.method + " " + route.pattern) {
                gated.add(route.method, route.pattern, route.handler)
                continue
            }
            switch route.handler {
            case .immediate(let body):
                gated.add(
                    route.method, route.pattern,
                    .immediate { [self] request in
                        try requireActive()
                        return try body(request)
                    })
            case .async(let body):
                gated.add(
                    route.method, route.pattern,
                    .async { [self] request in
                        try requireActive()
                        return try await body(request)
                    })
            }
        }
        return gated
    }

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
