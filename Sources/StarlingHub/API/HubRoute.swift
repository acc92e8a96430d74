import StarlingHTTP2

/// The hub's HTTP surface, declared: every route with its method, path pattern, who may call it and what a
/// standby does with it (DESIGN.md "Interfaces"; `Resources/openapi.json` documents the same table).
///
/// ```
///   request ─▶ Router ─▶ standby? ──refuse──▶ 503 standby (no token read)
///                           │ serve / active
///                           ▼
///                        access ──anyone──────────────────────────▶ handler
///                           │ region / admin
///                           ▼
///                        HubAuth ──no, unknown or expired token──▶ 401 unauthorized
///                           │     ──the other kind of token──────▶ 403 forbidden
///                           ▼
///                        handler(HubRequest) ──throws──▶ HTTPResponseError (HubError, HTTPError) or 503
/// ```
///
/// The checks run in ``admit(_:auth:isActive:)`` and the wrapping in ``makeRouter(auth:isActive:handler:)``, for
/// every route alike: a handler never checks a token or the role, and never maps its own errors. The handlers
/// are ``HubAPI``'s (one file per resource); ``HubAPI/handler(for:)`` switches over every case, so a route added
/// here without a handler does not compile.
enum HubRoute: CaseIterable, Sendable {
    // Documents and probes.
    case dashboard, openAPI, health, ready, metrics
    // Region endpoints (the agent's).
    case config, push, pull, agentStatus, registerTables, deadLetters, snapshot, adopt, reconcileTask,
        reconcileAnswer, capturedSchema
    // Admin endpoints.
    case status, conflicts, resolve, startReconcile, reconcileReport, rowHistory, reload, schemaChange

    /// Who may call a route.
    enum Access: Sendable {
        /// No token is read (documents, probes).
        case anyone
        /// The scrape token or the admin token (`/metrics`); none when `metrics_public` is set.
        case metrics
        /// A region's bearer token; the handler learns which region (``HubRequest/region``).
        case region
        /// The admin token.
        case admin
    }

    /// What a standby hub (another hub holds the sequencer lock) does with a route.
    enum OnStandby: Sendable {
        /// Served as on the active hub: reads nothing the sequencer owns in memory, or reports the role itself.
        case serve
        /// 503 `standby` with `retry-after: 1` before any token is read: agents move to the next hub URL.
        case refuse
    }

    /// One row of the table.
    struct Declaration: Sendable {
        var method: String
        var pattern: String
        var access: Access
        var onStandby: OnStandby

        init(_ method: String, _ pattern: String, _ access: Access, standby onStandby: OnStandby) {
            self.method = method
            self.pattern = pattern
            self.access = access
            self.onStandby = onStandby
        }
    }

    /// The table.
    var declaration: Declaration {
        switch self {
        case .dashboard: Declaration("GET", "/", .anyone, standby: .serve)
        case .openAPI: Declaration("GET", "/openapi.json", .anyone, standby: .serve)
        case .health: Declaration("GET", "/healthz", .anyone, standby: .serve)
        case .ready: Declaration("GET", "/readyz", .anyone, standby: .serve)  // answers 503 `standby` itself
        case .metrics: Declaration("GET", "/metrics", .metrics, standby: .serve)
        case .config: Declaration("GET", "/v1/config", .region, standby: .refuse)
        case .push: Declaration("POST", "/v1/changes", .region, standby: .refuse)
        case .pull: Declaration("GET", "/v1/changes", .region, standby: .refuse)
        case .agentStatus: Declaration("POST", "/v1/agent-status", .region, standby: .refuse)
        case .registerTables: Declaration("POST", "/v1/tables/register", .region, standby: .refuse)
        case .deadLetters: Declaration("POST", "/v1/dead-letters", .region, standby: .refuse)
        case .snapshot: Declaration("GET", "/v1/snapshot", .region, standby: .refuse)
        case .adopt: Declaration("POST", "/v1/snapshot/adopt", .region, standby: .refuse)
        case .reconcileTask: Declaration("GET", "/v1/reconcile/task", .region, standby: .refuse)
        case .reconcileAnswer: Declaration("POST", "/v1/reconcile/answer", .region, standby: .refuse)
        case .capturedSchema: Declaration("POST", "/v1/tables/schema", .region, standby: .refuse)
        case .status: Declaration("GET", "/v1/status", .admin, standby: .serve)
        case .conflicts: Declaration("GET", "/v1/conflicts", .admin, standby: .refuse)
        case .resolve: Declaration("POST", "/v1/conflicts/{id}/resolve", .admin, standby: .refuse)
        case .startReconcile: Declaration("POST", "/v1/reconcile", .admin, standby: .refuse)
        case .reconcileReport: Declaration("GET", "/v1/reconcile/{id}", .admin, standby: .refuse)
        case .rowHistory: Declaration("GET", "/v1/rows/{table}", .admin, standby: .serve)
        // A standby reloads too: it reads the file and nothing the sequencer owns, and serves with the new
        // tables when it takes over.
        case .reload: Declaration("POST", "/v1/admin/reload", .admin, standby: .serve)
        case .schemaChange: Declaration("POST", "/v1/schema", .admin, standby: .refuse)
        }
    }

    /// The checks before this route's handler, in order: a standby refuses (`OnStandby.refuse`), then the token
    /// must fit `access`. Returns who called (nil on an `.anyone` route, where no token is read). The role is
    /// read only for routes a standby refuses.
    func admit(_ request: HTTPRequest, auth: HubAuth, isActive: @autoclosure () -> Bool) throws(HTTPError)
        -> HubAuth.Principal?
    {
        let declaration = self.declaration
        if declaration.onStandby == .refuse && !isActive() { throw HubRole.standbyError }
        switch declaration.access {
        case .anyone: return nil
        case .metrics: return try auth.metrics(request)
        case .region: return .region(try auth.region(request))
        case .admin:
            try auth.admin(request)
            return .admin
        }
    }

    /// A router serving every route of the table with `handler(route)`, each behind ``admit(_:auth:isActive:)``;
    /// an error a handler throws that is not an ``HTTPResponseError`` (a Postgres failure) answers 503
    /// `storage_failed`, so a client retries.
    static func makeRouter(
        auth: HubAuth, isActive: @escaping @Sendable () -> Bool, handler: (HubRoute) -> HubHandler
    ) -> Router {
        var router = Router()
        for route in allCases {
            let declaration = route.declaration
            let wrapped: Router.Handler
            switch handler(route) {
            case .immediate(let body):
                wrapped = .immediate { request in
                    let caller = try route.admit(request, auth: auth, isActive: isActive())
                    do {
                        return try body(HubRequest(http: request, caller: caller))
                    } catch {
                        throw responseError(error)
                    }
                }
            case .async(let body):
                wrapped = .async { request in
                    let caller = try route.admit(request, auth: auth, isActive: isActive())
                    do {
                        return try await body(HubRequest(http: request, caller: caller))
                    } catch {
                        throw responseError(error)
                    }
                }
            }
            router.add(declaration.method, declaration.pattern, wrapped)
        }
        return router
    }

    /// The error a handler's failure answers with: its own when it has one, else a storage failure (the only
    /// errors the handlers let through unmapped come from the pool and Postgres).
    static func responseError(_ error: any Error) -> any HTTPResponseError {
        if let error = error as? any HTTPResponseError { return error }
        return HubError(code: .storageFailed, message: "\(error)")
    }
}

/// How a hub handler runs (``Router/Handler`` with the admitted ``HubRequest``).
enum HubHandler: Sendable {
    /// On the event loop: quick and never blocking (probes, documents, in-memory answers).
    case immediate(@Sendable (HubRequest) throws -> HTTPResponse)
    /// As a task off the loop (Postgres, the sequencer, long-polls).
    case async(@Sendable (HubRequest) async throws -> HTTPResponse)
}

/// A request that passed its route's checks (``HubRoute/admit(_:auth:isActive:)``), as a handler sees it.
struct HubRequest: Sendable {
    /// The request as the server received it.
    var http: HTTPRequest
    /// Who called: nil on `.anyone` routes, `.admin` on admin routes, `.region(name)` on region routes.
    var caller: HubAuth.Principal?

    /// The calling region. Only region routes' handlers ask; anything else is a mistake in the table.
    var region: String {
        guard case .region(let name) = caller else {
            preconditionFailure("a region handler runs on a route not declared .region")
        }
        return name
    }

    var body: [UInt8] { http.body }
    var query: [String: String] { http.query }
    var pathParameters: [String: String] { http.pathParameters }
}
