import Logging

/// An error that answers a request: a handler throws it and the server turns it into the API's error body,
/// `{"error":{"code":"…","message":"…"}}`, with the error's status and headers.
///
/// This is the one mapping from errors to responses. Handlers do not catch and rewrap: a module above conforms
/// its own error type once (the hub's `HubError` says which of its codes is a 404, a 409 or a 503), and anything
/// that does not conform is a 500 `internal`, logged by the server (``HTTPServerErrorMapping``).
public protocol HTTPResponseError: Error, Sendable {
    /// The status, code, message and extra headers this error answers with.
    var httpError: HTTPError { get }
}

/// An error a handler throws to answer with a given status and API error body.
public struct HTTPError: HTTPResponseError {
    public var status: Int
    public var code: String
    public var message: String
    public var headers: HTTPHeaders

    public init(_ status: Int, code: String, _ message: String, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public var httpError: HTTPError { self }

    /// The API error body with `status` and `headers`.
    public var response: HTTPResponse {
        var response = HTTPResponse.error(status, code: code, message: message)
        for field in headers { response.headers.add(field.name, field.value) }
        return response
    }
}

/// Where a thrown error becomes a response, for every handler of every server (inline and in tasks).
enum HTTPServerErrorMapping {
    /// The response for `error`: its own for an ``HTTPResponseError``, else 500 `internal` (the error itself is
    /// logged, never sent: it may name internals).
    static func response(for error: any Error, path: String, logger: Logger) -> HTTPResponse {
        if let error = error as? any HTTPResponseError { return error.httpError.response }
        logger.error("handler failed", metadata: ["http.path": "\(path)", "error": "\(error)"])
        return .error(500, code: "internal", message: "internal error")
    }
}
