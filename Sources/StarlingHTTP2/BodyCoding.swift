/// gzip on the wire for server connections: request inflation, handler invocation and response deflation.
///
/// Kept apart from the connection: everything here may take time (a body of megabytes), so task handlers run it
/// off the loop; the connection only deflates small inline responses on the loop (``HTTP2ServerConnection``).
enum BodyCoding {
    /// Decodes the request, runs the handler, turns errors into responses and deflates the result.
    static func respond(to request: HTTPRequest, with run: @Sendable (HTTPRequest) async throws -> HTTPResponse,
                        maxBodyBytes: Int, acceptEncoding: String?, gzipMinimumBytes: Int,
                        errorResponse: @Sendable (any Error, HTTPRequest) -> HTTPResponse) async -> HTTPResponse {
        let response: HTTPResponse
        do {
            response = try await run(try decodeBody(request, maxBytes: maxBodyBytes))
        } catch {
            response = errorResponse(error, request)
        }
        return encodeBody(response, acceptEncoding: acceptEncoding, minimumBytes: gzipMinimumBytes)
    }

    /// Inflates a gzip request body (bounded: a bomb gets 413). Runs off the loop.
    static func decodeBody(_ request: HTTPRequest, maxBytes: Int) throws(HTTPError) -> HTTPRequest {
        guard request.headers["content-encoding"]?.lowercased() == "gzip" else { return request }
        var decoded = request
        do {
            decoded.body = try Gzip.decompress(request.body, maxBytes: maxBytes)
        } catch {
            let status = error.code == .bodyTooLarge ? 413 : 400
            throw HTTPError(status, code: status == 413 ? "body_too_large" : "bad_encoding", error.message)
        }
        decoded.headers.remove("content-encoding")
        return decoded
    }

    /// The largest response the loop deflates itself (an inline handler's; a task's arrives deflated).
    static let maxLoopDeflateBytes = 64 * 1024

    /// Deflates a response body when the client accepts gzip and the body is large enough. Runs off the loop
    /// for task handlers; inline responses are small.
    static func encodeBody(_ response: HTTPResponse, acceptEncoding: String?, minimumBytes: Int) -> HTTPResponse {
        guard response.body.count >= minimumBytes, acceptsGzip(acceptEncoding),
              response.headers["content-encoding"] == nil,
              let compressed = try? Gzip.compress(response.body) else { return response }
        var encoded = response
        encoded.body = compressed
        encoded.headers.set("content-encoding", "gzip")
        encoded.headers.add("vary", "accept-encoding")
        return encoded
    }

    /// True when an accept-encoding value lists gzip (q=0 is treated as listed: good enough for our clients).
    static func acceptsGzip(_ value: String?) -> Bool {
        guard let value else { return false }
        return value.lowercased().split(separator: ",").contains {
            $0.split(separator: ";").first.map { $0.trimmingSpaces() == "gzip" } ?? false
        }
    }
}
