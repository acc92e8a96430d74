/// One request stream on a server connection: the request as it arrives, the response as it leaves, and where
/// the stream is (``StateMachine``). Owned by its ``HTTP2ServerConnection``, confined to its loop.
final class ServerStream {
    /// Monotonic nanoseconds when the headers began: the request deadline and the access log count from it.
    let startedAt: UInt64
    var state = StateMachine()
    var method: String?
    var path: String?
    var headers = HTTPHeaders()
    var body: [UInt8] = []
    /// The running handler's id in the loop context, while a task owns the stream.
    var handlerID: UInt64?
    /// The request's accept-encoding, looked at only when a response is large enough to compress.
    var acceptEncoding: String?
    var requestMethod = ""
    var requestPath = ""
    var responseBody: [UInt8] = []
    var responseOffset = 0

    init(startedAt: UInt64) { self.startedAt = startedAt }

    /// The complete request as a handler sees it (the body still encoded as sent): 400 without `:method` or
    /// `:path`, 415 for a content-encoding other than gzip.
    func makeRequest(peer: String) throws(HTTPError) -> HTTPRequest {
        guard let method, let target = path else {
            throw HTTPError(400, code: "bad_request", "missing :method or :path")
        }
        let path: String
        let query: String
        if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = String(target[..<mark])
            query = String(target[target.index(after: mark)...])
        } else {
            path = target
            query = ""
        }
        if let encoding = headers["content-encoding"]?.lowercased(), encoding != "identity", encoding != "gzip" {
            throw HTTPError(415, code: "unsupported_encoding", "content-encoding \(encoding) is not supported")
        }
        return HTTPRequest(method: method, path: path, rawQuery: query, headers: headers, body: body,
                           remoteAddress: peer)
    }
}
