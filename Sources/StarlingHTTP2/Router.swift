import Logging

/// Maps method + path to handlers. Patterns are literal segments and `{name}` parameters:
/// `/v1/conflicts/{id}/resolve`. Built before the server starts, then immutable and shared by all loops.
public struct Router: Sendable {
    /// How a handler runs.
    public enum Handler: Sendable {
        /// Runs on the event loop: must be quick and never block (health checks, static pages).
        case immediate(@Sendable (HTTPRequest) throws -> HTTPResponse)
        /// Runs as a task off the loop; its response returns to the loop when it completes.
        case async(@Sendable (HTTPRequest) async throws -> HTTPResponse)
    }

    /// One registered route.
    public struct Route: Sendable {
        public let method: String
        public let pattern: String
        let segments: [Segment]
        public let handler: Handler

        /// True when some segment is a `{name}` parameter.
        var hasParameters: Bool {
            segments.contains { if case .parameter = $0 { return true } else { return false } }
        }
    }

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    /// The outcome of a lookup.
    public enum Match: Sendable {
        case found(Handler, parameters: [String: String])
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    public private(set) var routes: [Route] = []
    /// Routes without parameters by "METHOD path": the common case costs one hash lookup.
    private var literalRoutes: [String: Handler] = [:]

    public init() {}

    /// Adds a route; a later duplicate of the same method and pattern replaces nothing — it is a programmer
    /// error.
    public mutating func add(_ method: String, _ pattern: String, _ handler: Handler) {
        let segments = Self.split(pattern).map { part -> Segment in
            if part.hasPrefix("{") && part.hasSuffix("}") { return .parameter(String(part.dropFirst().dropLast())) }
            return .literal(String(part))
        }
        precondition(!routes.contains { $0.method == method && $0.segments == segments },
                     "route \(method) \(pattern) registered twice")
        let route = Route(method: method, pattern: pattern, segments: segments, handler: handler)
        routes.append(route)
        if !route.hasParameters {
            let canonical = "/" + segments.map { if case .literal(let text) = $0 { return text } else { return "" } }
                .joined(separator: "/")
            literalRoutes[method + " " + canonical] = handler
        }
    }

    /// Finds the handler for `method` and `path` (no query string).
    ///
    /// A literal pattern takes precedence over parameters: when a literal route has this path but another
    /// method (`POST /v1/reconcile/answer`), a `GET` is 405 even though `GET /v1/reconcile/{id}` would bind it.
    public func match(method: String, path: String) -> Match {
        if let handler = literalRoutes[method + " " + path] { return .found(handler, parameters: [:]) }
        let parts = Self.split(path)
        var allowed: [String] = []
        var parameterized: (handler: Handler, parameters: [String: String])?
        var literalAllowed: [String] = []
        for route in routes where route.segments.count == parts.count {
            guard let parameters = Self.bind(route.segments, parts) else { continue }
            let isLiteral = !route.hasParameters
            if route.method == method || (method == "HEAD" && route.method == "GET") {
                if isLiteral { return .found(route.handler, parameters: parameters) }
                if parameterized == nil { parameterized = (route.handler, parameters) }
                continue
            }
            allowed.append(route.method)
            if isLiteral { literalAllowed.append(route.method) }
        }
        if !literalAllowed.isEmpty { return .methodNotAllowed(allowed: literalAllowed) }
        if let parameterized { return .found(parameterized.handler, parameters: parameterized.parameters) }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }

    /// What the server does with a complete request.
    enum Routing {
        /// Answer at once: 404 without a route for the path, 405 (with `allow`) for another method.
        case respond(HTTPResponse)
        /// Run the handler with the request, its path parameters bound.
        case run(Handler, HTTPRequest)
    }

    /// Routes a complete request: the one place a request becomes a handler call or a 404/405.
    func route(_ request: HTTPRequest) -> Routing {
        switch match(method: request.method, path: request.path) {
        case .notFound:
            return .respond(.error(404, code: "not_found", message: "no route for \(request.path)"))
        case .methodNotAllowed(let allowed):
            var response = HTTPResponse.error(
                405, code: "method_not_allowed", message: "\(request.method) is not allowed on \(request.path)")
            response.headers.set("allow", allowed.joined(separator: ", "))
            return .respond(response)
        case .found(let handler, let parameters):
            var routed = request
            routed.pathParameters = parameters
            return .run(handler, routed)
        }
    }

    private static func split(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }

    private static func bind(_ segments: [Segment], _ parts: [Substring]) -> [String: String]? {
        var parameters: [String: String] = [:]
        for (segment, part) in zip(segments, parts) {
            switch segment {
            case .literal(let text):
                if text != part { return nil }
            case .parameter(let name):
                guard let value = PercentDecoding.decode(part, plusAsSpace: false) else { return nil }
                parameters[name] = value
            }
        }
        return parameters
    }
}
