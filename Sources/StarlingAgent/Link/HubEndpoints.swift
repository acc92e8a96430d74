import StarlingCore
import StarlingHTTP2
import StarlingTLS
import Synchronization

/// The hub URLs of `agent.yaml` (`hub:` one URL or a list) with one HTTP/2 client each, and which one is in
/// use: after a failover the active hub is at another URL, so the agent must find it on its own.
///
/// Policy: sticky on the current URL (initially the first) while it answers; on a transport failure, a
/// timeout, or a 503 whose code is `standby` or `shutting_down`, the request moves on to the next URL at
/// once, and so on round the list; only when every URL failed does the request throw (retryable), and the
/// agent's own exponential backoff with jitter spaces the next round. Immediate moves keep a takeover short
/// (one standby 503 costs a round trip, not a backoff step); the backoff between rounds keeps a cluster with
/// no active hub from being hammered. Moving is safe for every agent request: pushes are idempotent on change
/// ids, pulls read, registration, status and dead-letter reports are idempotent.
///
/// Thread-safe: the clients are immutable after `init`, the current index is a `Mutex`. Owns the clients
/// (``shutdown()`` closes them and their loop threads).
final class HubEndpoints: Sendable {
    /// One hub URL and its client.
    struct Endpoint: Sendable {
        var url: String
        var client: HTTP2Client
    }

    let endpoints: [Endpoint]
    private let current = Mutex(0)

    /// One client per URL (TLS with `ca` for https), every request carrying `headers`, gzip as `compression`
    /// decides for that URL. Connects lazily.
    init(
        urls: [String], ca: String?, headers: HTTPHeaders, requestTimeout: Duration,
        compression: HubCompression = .auto
    ) throws(AgentError) {
        var endpoints: [Endpoint] = []
        for (index, url) in urls.enumerated() {
            var http = HTTP2ClientConfiguration(baseURL: url)
            if url.hasPrefix("https://") { http.tls = TLSConfiguration.client(trustRootsPath: ca) }
            http.defaultHeaders = headers
            http.requestTimeout = requestTimeout
            if !compression.compresses(url: url) {
                http.gzipRequestsFromBytes = nil
                http.acceptsGzip = false
            }
            do {
                endpoints.append(Endpoint(url: url, client: try HTTP2Client(configuration: http)))
            } catch {
                for endpoint in endpoints { endpoint.client.shutdown() }
                let key = urls.count == 1 ? "hub" : "hub[\(index)]"
                throw AgentError(
                    code: .invalidConfiguration, message: "cannot set up the hub client for \(url): \(error)", key: key)
            }
        }
        precondition(!endpoints.isEmpty, "validated configurations have at least one hub URL")
        self.endpoints = endpoints
    }

    /// The URL requests go to now.
    var currentURL: String { endpoints[current.withLock { $0 }].url }

    /// Closes every client.
    func shutdown() {
        for endpoint in endpoints { endpoint.client.shutdown() }
    }

    /// Sends `request` to the current hub, moving on through the list as described on the type. Returns the
    /// first response that is not a failover answer; throws the last failure when every URL failed.
    func send(_ request: HTTPClientRequest) async throws(AgentError) -> HTTPResponse {
        var lastError: AgentError?
        for _ in 0..<endpoints.count {
            let index = current.withLock { $0 }
            let endpoint = endpoints[index]
            do {
                let response = try await endpoint.client.send(request)
                guard let code = Self.failoverCode(response) else { return response }
                lastError = AgentError(
                    code: .hubUnavailable, message: "\(request.method) \(request.path): \(endpoint.url) is \(code)",
                    httpStatus: response.status, isRetryable: true)
            } catch {
                lastError = AgentError(
                    code: .hubUnavailable, message: "\(request.method) \(request.path): \(endpoint.url): \(error)",
                    isRetryable: true)
            }
            moveOn(from: index)
        }
        throw lastError ?? AgentError(code: .hubUnavailable, message: "no hub answered", isRetryable: true)
    }

    /// Moves to the next URL unless a concurrent request already moved away from `index`.
    private func moveOn(from index: Int) {
        current.withLock { current in
            if current == index { current = (index + 1) % endpoints.count }
        }
    }

    /// `standby` or `shutting_down` when `response` is a 503 saying so (this hub will not serve; another may),
    /// nil otherwise (any other answer, error or not, is the hub's word and goes back to the caller).
    static func failoverCode(_ response: HTTPResponse) -> String? {
        guard response.status == 503, let body = try? JSONParser().parse(response.body),
            let code = body["error"]?["code"]?.stringValue, code == "standby" || code == "shutting_down"
        else { return nil }
        return code
    }
}
