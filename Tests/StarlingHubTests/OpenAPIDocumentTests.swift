import StarlingCore
import StarlingHTTP2
import StarlingHub
import Testing

@Suite(.timeLimit(.minutes(2)))
struct OpenAPIDocumentTests {
    /// Routes the document may describe ahead of the router: none — documented and served routes must match.
    static let landingElsewhere: Set<String> = []

    @Test func servedDocumentIsTheEmbeddedFile() async throws {
        // Proves /openapi.json serves, as JSON, exactly the document embedded from Resources/openapi.json.
        try await OperatorHub.with { hub in
            let response = try await hub.harness.client.send(HTTPClientRequest(method: "GET", path: "/openapi.json"))
            #expect(response.status == 200 && response.headers["content-type"] == "application/json")
            #expect(response.body == Array(HubOpenAPI.document.utf8))
            #expect(HubOpenAPI.document.hasPrefix("{\n") && HubOpenAPI.document.hasSuffix("}\n"))
        }
    }

    @Test func everyRegisteredRouteIsDocumentedAndNothingElse() async throws {
        // Proves the set of "METHOD path" in the document equals the routes the running hub's router registered.
        try await OperatorHub.with { hub in
            // The server is private to Hub; reflection reads the real router without widening Hub's API.
            let server = try #require(Mirror(reflecting: hub.harness.hub).descendant("server") as? HTTP2Server)
            let registered = Set(server.router.routes.map { "\($0.method) \($0.pattern)" })
            let documented = try Self.documentedRoutes()
            #expect(registered.subtracting(documented).isEmpty, "undocumented: \(registered.subtracting(documented))")
            let extra = documented.subtracting(registered).subtracting(Self.landingElsewhere)
            #expect(extra.isEmpty, "documented but not served: \(extra)")
            #expect(registered.contains("GET /") && registered.contains("GET /openapi.json"))
        }
    }

    @Test func documentIsOpenAPI31WithResolvableReferences() throws {
        // Proves the document parses, declares 3.1, gives every operation an id, responses and a security
        // choice, and every $ref points at an existing component.
        let document = try JSONValue(parsing: Array(HubOpenAPI.document.utf8))
        #expect(document["openapi"] == "3.1.0")
        #expect(document["components"]?["securitySchemes"]?["adminToken"]?["scheme"] == "bearer")
        #expect(document["components"]?["securitySchemes"]?["regionToken"]?["scheme"] == "bearer")
        var operationIDs: Set<String> = []
        for (path, item) in document["paths"]?.objectValue ?? [:] {
            for (method, operation) in item.objectValue ?? [:] {
                let id = try #require(operation["operationId"]?.stringValue, "\(method) \(path)")
                #expect(operationIDs.insert(id).inserted, "duplicate operationId \(id)")
                #expect(operation["responses"]?["200"] != nil, "\(method) \(path) has no 200")
                #expect(operation["security"]?.arrayValue != nil, "\(method) \(path) states no security")
            }
        }
        var references: [String] = []
        Self.collectReferences(document, into: &references)
        #expect(!references.isEmpty)
        for reference in references {
            let parts = reference.split(separator: "/").dropFirst().map(String.init)
            var node: JSONValue? = document
            for part in parts { node = node?[part] }
            #expect(node != nil, "unresolved \(reference)")
        }
        for schema in ["Change", "LogEntry", "Verdict", "Status", "Conflict", "Resolution", "PullPage"] {
            #expect(document["components"]?["schemas"]?[schema] != nil, "schema \(schema) missing")
        }
    }

    static func documentedRoutes() throws -> Set<String> {
        let document = try JSONValue(parsing: Array(HubOpenAPI.document.utf8))
        var routes: Set<String> = []
        for (path, item) in document["paths"]?.objectValue ?? [:] {
            for method in (item.objectValue ?? [:]).keys { routes.insert("\(method.uppercased()) \(path)") }
        }
        return routes
    }

    static func collectReferences(_ value: JSONValue, into references: inout [String]) {
        switch value {
        case .object(let members):
            if case .string(let reference)? = members["$ref"] { references.append(reference) }
            for member in members.values { collectReferences(member, into: &references) }
        case .array(let items):
            for item in items { collectReferences(item, into: &references) }
        default: break
        }
    }
}
