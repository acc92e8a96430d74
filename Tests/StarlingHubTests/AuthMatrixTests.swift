import Foundation
import StarlingCore
import StarlingHTTP2
import StarlingHub
import Testing

/// Every route of the hub × every kind of caller → the status the design promises.
@Suite(.timeLimit(.minutes(2)))
struct AuthMatrixTests {
    /// Who may call a route.
    enum Audience: String { case anyone, region, admin }

    /// One route, a body that is valid for it, and who may call it. A valid caller gets `okStatus` (the
    /// resolve route answers 404 for a conflict that does not exist, after authentication).
    struct Route: Sendable, CustomStringConvertible {
        var method: String
        var path: String
        var template: String
        var body: String
        var audience: Audience
        var okStatus: Int = 200
        var description: String { "\(method) \(path)" }
    }

    static let routes: [Route] = [
        Route(method: "GET", path: "/", template: "/", body: "", audience: .anyone),
        Route(method: "GET", path: "/openapi.json", template: "/openapi.json", body: "", audience: .anyone),
        Route(method: "GET", path: "/healthz", template: "/healthz", body: "", audience: .anyone),
        Route(method: "GET", path: "/readyz", template: "/readyz", body: "", audience: .anyone),
        // Without a scrape token configured, /metrics takes the admin token (MetricsAccessTests: the scrape token).
        Route(method: "GET", path: "/metrics", template: "/metrics", body: "", audience: .admin),
        Route(method: "GET", path: "/v1/config", template: "/v1/config", body: "", audience: .region),
        Route(method: "POST", path: "/v1/changes", template: "/v1/changes", body: #"{"changes":[]}"#, audience: .region),
        Route(method: "GET", path: "/v1/changes?after=0", template: "/v1/changes", body: "", audience: .region),
        Route(
            method: "POST", path: "/v1/agent-status", template: "/v1/agent-status", body: #"{"outbox_depth":0}"#,
            audience: .region),
        Route(
            method: "POST", path: "/v1/tables/register", template: "/v1/tables/register", body: #"{"tables":[]}"#,
            audience: .region),
        Route(
            method: "POST", path: "/v1/dead-letters", template: "/v1/dead-letters", body: #"{"dead_letters":[]}"#,
            audience: .region),
        Route(
            method: "GET", path: "/v1/snapshot?table=public.items", template: "/v1/snapshot", body: "",
            audience: .region),
        Route(
            method: "POST", path: "/v1/snapshot/adopt", template: "/v1/snapshot/adopt",
            body: #"{"table":"nope.nope","rows":0}"#, audience: .region, okStatus: 400),
        Route(method: "GET", path: "/v1/status", template: "/v1/status", body: "", audience: .admin),
        Route(method: "GET", path: "/v1/conflicts", template: "/v1/conflicts", body: "", audience: .admin),
        Route(
            method: "POST", path: "/v1/conflicts/999/resolve", template: "/v1/conflicts/{id}/resolve",
            body: #"{"pick":"current"}"#, audience: .admin, okStatus: 404),
        Route(method: "GET", path: "/v1/reconcile/999", template: "/v1/reconcile/{id}", body: "", audience: .admin, okStatus: 404),
        Route(method: "GET", path: "/v1/reconcile/task", template: "/v1/reconcile/task", body: "", audience: .region),
        Route(
            method: "POST", path: "/v1/reconcile/answer", template: "/v1/reconcile/answer",
            body: #"{"run":999,"table":"public.items","step":1,"cursor":0,"buckets":[]}"#, audience: .region,
            okStatus: 409),
        Route(method: "POST", path: "/v1/reconcile", template: "/v1/reconcile", body: "{}", audience: .admin),
        Route(
            method: "GET", path: "/v1/rows/public.items?key=%7B%22id%22%3A1%7D", template: "/v1/rows/{table}", body: "",
            audience: .admin),
        // Schema changes of a table that is not synced: refused with 400 after authentication.
        Route(
            method: "POST", path: "/v1/schema", template: "/v1/schema",
            body: #"{"table":"nope.nope","statement":"ADD COLUMN x integer"}"#, audience: .admin, okStatus: 400),
        Route(
            method: "POST", path: "/v1/tables/schema", template: "/v1/tables/schema", body: #"{"table":"nope.nope"}"#,
            audience: .region, okStatus: 400),
        // The harness's hub has no configuration file: the admin's reload is refused with 400, nobody else's runs.
        Route(
            method: "POST", path: "/v1/admin/reload", template: "/v1/admin/reload", body: "", audience: .admin,
            okStatus: 400),
    ]

    /// A caller of the matrix: its token (nil: none) and which audiences it belongs to.
    enum Caller: String, CaseIterable { case none, wrong, region, otherRegion, admin, expired }

    static func token(_ caller: Caller) -> String? {
        switch caller {
        case .none: nil
        case .wrong: "token-r9-not-configured"
        case .region: HubHarness.token("r1")
        case .otherRegion: HubHarness.token("r2")
        case .admin: HubHarness.adminToken
        case .expired: "old-token-of-r1"
        }
    }

    static func expected(_ route: Route, _ caller: Caller) -> Int {
        switch (route.audience, caller) {
        case (.anyone, _): route.okStatus
        case (_, .none), (_, .wrong), (_, .expired): 401
        case (.region, .region), (.region, .otherRegion), (.admin, .admin): route.okStatus
        case (.region, .admin), (.admin, .region), (.admin, .otherRegion): 403
        }
    }

    @Test func everyRouteAgainstEveryCaller() async throws {
        // Proves each route answers 401 without or with an unknown or expired token, 403 for the wrong kind of
        // valid token, and success for its own audience; and that the matrix covers every documented route.
        let documented = try Self.documentedRoutes()
        let covered = Set(Self.routes.map { "\($0.method) \($0.template)" })
        #expect(documented == covered, "routes in /openapi.json but not in the matrix, or the reverse")
        try await SecureHub.with(configure: { configuration in
            configuration.regions[0].previousTokens = [
                .init(token: "old-token-of-r1", until: "2001-01-01T00:00:00Z")
            ]
        }) { hub, _ in
            var failures: [String] = []
            for route in Self.routes {
                for caller in Caller.allCases {
                    let answer = try await hub.send(
                        route.method, route.path, token: Self.token(caller), body: Array(route.body.utf8))
                    let want = Self.expected(route, caller)
                    if answer.status != want {
                        failures.append("\(route) as \(caller): \(answer.status), expected \(want)")
                    }
                    if answer.status == 401 {
                        #expect(answer.json["error"]?["code"] == "unauthorized")
                    } else if answer.status == 403 {
                        #expect(answer.json["error"]?["code"] == "forbidden")
                    }
                }
            }
            #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        }
    }

    @Test func regionCannotPushAnotherRegionsChange() async throws {
        // Proves a push whose change ids claim another region is refused 403 as a whole, even mixed with the
        // caller's own changes, and nothing is stored; the same change from its own region is accepted.
        try await HubHarness.with { hub in
            let before = try await hub.counts()
            let foreign = try await hub.push("r1", [Changes.insert("r1", 1, id: 1), Changes.insert("r2", 1, id: 2)])
            #expect(foreign.status == 403)
            #expect(foreign.json["error"]?["code"] == "forbidden_region")
            #expect(try await hub.counts() == before)
            #expect(hub.hub.head == 0)
            let own = try await hub.push("r2", [Changes.insert("r2", 1, id: 2)])
            #expect(own.status == 200)
            #expect(own.json["results"]?[0]?["status"] == "accepted")
        }
    }

    /// `METHOD /template` for every operation in the served OpenAPI document.
    static func documentedRoutes() throws -> Set<String> {
        let document = try JSONValue(parsing: Array(HubOpenAPI.document.utf8))
        guard case .object(let paths)? = document["paths"] else { return [] }
        var result = Set<String>()
        for (path, item) in paths {
            guard case .object(let operations) = item else { continue }
            for method in operations.keys where ["get", "post", "put", "delete", "patch"].contains(method) {
                result.insert("\(method.uppercased()) \(path)")
            }
        }
        return result
    }
}
