import Foundation
import StarlingCore
import StarlingHTTP2
@testable import StarlingHub
import Testing

/// The hub's route table without a hub: the router ``HubRoute/makeRouter(auth:isActive:handler:)`` builds, with
/// stub handlers, against every kind of caller in both roles; the table against the OpenAPI document; the error
/// mapping. (`AuthMatrixTests` and `HubFailoverTests` check the same promises end to end on real hubs.)
@Suite struct HubRouteTests {
    /// A caller: its bearer token (nil: none).
    enum Caller: String, CaseIterable, Sendable {
        case none, unknown, region, admin, scraper

        var token: String? {
            switch self {
            case .none: nil
            case .unknown: "token-r9-not-configured"
            case .region: HubHarness.token("r1")
            case .admin: HubHarness.adminToken
            case .scraper: HubRouteTests.scrapeToken
            }
        }
    }

    static let scrapeToken = "scrape-token-0123456789"

    static func settings() throws -> HubSettings {
        var configuration = HubHarness.configuration(
            database: "postgresql://nobody@127.0.0.1:1/none", tables: HubHarness.defaultTables)
        configuration.metricsToken = scrapeToken
        return try configuration.validate()
    }

    /// A concrete path of a pattern (`{id}` → 7).
    static func path(_ pattern: String) -> String { pattern.replacingOccurrences(of: "{id}", with: "7") }

    /// The stub handler of every route: immediate for every other route, async for the rest (both wrappers run),
    /// answering who called; `failure`, when given, is thrown instead.
    static func router(isActive: Bool, failure: (any Error & Sendable)? = nil) throws -> Router {
        let auth = HubAuth(settings: try settings())
        return HubRoute.makeRouter(auth: auth, isActive: { isActive }) { route in
            let index = HubRoute.allCases.firstIndex(of: route) ?? 0
            let answer: @Sendable (HubRequest) throws -> HTTPResponse = { request in
                if let failure { throw failure }
                let caller: String
                switch request.caller {
                case nil: caller = "anyone"
                case .admin: caller = "admin"
                case .scraper: caller = "scraper"
                case .region: caller = "region " + request.region
                }
                return .text(200, caller)
            }
            if index % 2 == 0 { return .immediate(answer) }
            return .async { try answer($0) }
        }
    }

    /// Sends one request through `router` as the server would, errors mapped to their responses.
    static func send(_ router: Router, _ route: HubRoute, _ caller: Caller) async throws -> HTTPResponse {
        let declaration = route.declaration
        var request = HTTPRequest(method: declaration.method, path: path(declaration.pattern))
        if let token = caller.token { request.headers.add("authorization", "Bearer \(token)") }
        guard case .found(let handler, let parameters) = router.match(method: request.method, path: request.path)
        else {
            Issue.record("\(declaration.method) \(declaration.pattern) is not routed")
            return HTTPResponse(status: 0)
        }
        request.pathParameters = parameters
        do {
            switch handler {
            case .immediate(let body): return try body(request)
            case .async(let body): return try await body(request)
            }
        } catch let error as any HTTPResponseError {
            return error.httpError.response
        }
    }

    /// What the design promises each caller of `route` on an active hub or a standby.
    static func expected(_ route: HubRoute, _ caller: Caller, isActive: Bool) -> (status: Int, text: String) {
        let declaration = route.declaration
        if declaration.onStandby == .refuse && !isActive { return (503, "standby") }
        switch (declaration.access, caller) {
        case (.anyone, _): return (200, "anyone")
        case (_, .none), (_, .unknown): return (401, "unauthorized")
        case (.region, .region): return (200, "region r1")
        case (.admin, .admin), (.metrics, .admin): return (200, "admin")
        case (.metrics, .scraper): return (200, "scraper")
        case (.region, .admin), (.admin, .region), (.metrics, .region), (.region, .scraper), (.admin, .scraper):
            return (403, "forbidden")
        }
    }

    @Test(arguments: [true, false])
    func everyRouteAdmitsOnlyItsCallers(isActive: Bool) async throws {
        // Proves each route of the table, through the router it builds: no or an unknown token is 401, the admin
        // token on a region route and a region token on an admin route are 403, the right token reaches the
        // handler with the caller named; on a standby every route declared `.refuse` is 503 `standby` with
        // retry-after before any token is read, and the `.serve` routes answer as on the active hub.
        let router = try Self.router(isActive: isActive)
        var failures: [String] = []
        for route in HubRoute.allCases {
            for caller in Caller.allCases {
                let response = try await Self.send(router, route, caller)
                let want = Self.expected(route, caller, isActive: isActive)
                let text = String(decoding: response.body, as: UTF8.self)
                let code = try? JSONValue(parsing: response.body)["error"]?["code"]?.stringValue
                if response.status != want.status || (code ?? text) != want.text {
                    failures.append("\(route) as \(caller): \(response.status) \(code ?? text), expected \(want)")
                }
                if response.status == 503 { #expect(response.headers["retry-after"] == "1") }
                if response.status == 401 { #expect(response.headers["www-authenticate"] == "Bearer") }
            }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    }

    @Test func storageFailuresAnswer503AndRefusalsTheirOwnStatus() async throws {
        // Proves an error a handler lets through unmapped (a Postgres failure) is 503 `storage_failed` with
        // retry-after on every route, while an HTTPError or a HubError keeps its own status.
        struct StorageBroke: Error, CustomStringConvertible { var description: String { "connection lost" } }
        let broken = try Self.router(isActive: true, failure: StorageBroke())
        for route in HubRoute.allCases {
            let response = try await Self.send(broken, route, route.declaration.access == .region ? .region : .admin)
            #expect(response.status == 503, "\(route)")
            #expect(try JSONValue(parsing: response.body)["error"]?["code"] == "storage_failed")
            #expect(response.headers["retry-after"] == "1")
        }
        let refused = try Self.router(isActive: true, failure: HTTPError(409, code: "schema_mismatch", "no"))
        #expect(try await Self.send(refused, .registerTables, .region).status == 409)
        let missing = try Self.router(isActive: true, failure: HubError(code: .notFound, message: "no such conflict"))
        #expect(try await Self.send(missing, .resolve, .admin).status == 404)
    }

    @Test(arguments: [
        (HubError.Code.overloaded, 503, true), (.shuttingDown, 503, true), (.storageFailed, 503, true),
        (.standby, 503, true), (.notFound, 404, false), (.alreadyResolved, 409, false),
        (.invalidRequest, 400, false), (.invalidConfiguration, 400, false),
    ])
    func hubErrorsMapToStatuses(code: HubError.Code, status: Int, retries: Bool) {
        // Proves each hub error code answers its documented status, with retry-after exactly on the retryable ones.
        let answer = HubError(code: code, message: "m").httpError
        #expect(answer.status == status && answer.code == code.rawValue)
        #expect((answer.headers["retry-after"] == "1") == retries)
    }

    @Test func tableIsTheDocumentedSurface() throws {
        // Proves the table and /openapi.json describe the same routes with the same security (no token, the
        // region token, the admin token), and the routes a standby serves are the ones the document lists.
        let document = try JSONValue(parsing: Array(HubOpenAPI.document.utf8))
        var documented: [String: String] = [:]
        guard case .object(let paths)? = document["paths"] else {
            Issue.record("the document has no paths")
            return
        }
        for (path, item) in paths {
            guard case .object(let operations) = item else { continue }
            for (method, operation) in operations where ["get", "post", "put", "delete", "patch"].contains(method) {
                let schemes = operation["security"]?.arrayValue?.compactMap { $0.objectValue?.keys.first } ?? []
                documented["\(method.uppercased()) \(path)"] = schemes.first ?? "none"
            }
        }
        var declared: [String: String] = [:]
        for route in HubRoute.allCases {
            let declaration = route.declaration
            let key = "\(declaration.method) \(declaration.pattern)"
            #expect(declared[key] == nil, "\(key) is declared twice")
            switch declaration.access {
            case .anyone: declared[key] = "none"
            case .region: declared[key] = "regionToken"
            case .admin: declared[key] = "adminToken"
            case .metrics: declared[key] = "metricsToken"
            }
        }
        #expect(declared == documented)

        let description = document["info"]?["description"]?.stringValue ?? ""
        let sentence = try #require(description.range(of: "A standby hub").map { description[$0.lowerBound...] })
        let served = Set(
            HubRoute.allCases.filter { $0.declaration.onStandby == .serve }.map(\.declaration.pattern))
        let mentioned = Set(
            sentence.split(separator: "`").enumerated()
                .filter { $0.offset % 2 == 1 }.map { String($0.element) }.prefix(while: { $0.hasPrefix("/") }))
        #expect(served == mentioned, "served on a standby: \(served.sorted()); documented: \(mentioned.sorted())")
    }
}
