public import StarlingHTTP2

/// How each hub error answers a request: the one place hub errors become statuses (handlers throw them as
/// they are). Retryable failures are 503 with `retry-after: 1`, so agents retry or move to the next hub URL.
/// Public because `HubError` is (a conformance is as visible as its type).
extension HubError: HTTPResponseError {
    public var httpError: HTTPError {
        switch code {
        case .overloaded, .shuttingDown, .storageFailed, .standby:
            HTTPError(503, code: code.rawValue, message, headers: ["retry-after": "1"])
        case .notFound: HTTPError(404, code: code.rawValue, message)
        case .alreadyResolved, .schemaConflict: HTTPError(409, code: code.rawValue, message)
        default: HTTPError(400, code: code.rawValue, description)
        }
    }
}
