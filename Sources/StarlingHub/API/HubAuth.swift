import StarlingHTTP2
import StarlingIO
import StarlingTLS

/// Bearer-token authentication: the presented token's SHA-256 is compared in constant time with every
/// configured hash (no early exit, so timing says nothing about which or how many bytes matched).
/// 401 for a missing, unknown or expired token, 403 for a valid token on the wrong kind of endpoint.
///
/// Rotation: besides each principal's current token, its previous tokens are accepted while the clock is before
/// their `until` (``HubSettings/PreviousToken``); every hash is still compared on every request, expired or not,
/// so the time taken does not depend on which token matched.
struct HubAuth: Sendable {
    /// Who a valid token belongs to.
    enum Principal: Sendable, Hashable {
        case region(String)
        case admin
        /// The `/metrics` scrape token.
        case scraper
    }

    /// One accepted hash and until when (`Int64.max`: a current token).
    private struct Credential: Sendable {
        var principal: Principal
        var hash: [UInt8]
        var validUntilMicros: Int64
    }

    private let credentials: [Credential]
    /// `/metrics` reads no token (``HubSettings/metricsPublic``).
    private let metricsPublic: Bool
    /// Wall-clock microseconds since the Unix epoch (injected by tests).
    private let clock: @Sendable () -> Int64

    init(settings: HubSettings, clock: @escaping @Sendable () -> Int64 = TimeSource.system.wallClockMicros) {
        var credentials: [Credential] = []
        for region in settings.regions {
            credentials.append(Credential(principal: .region(region.name), hash: region.tokenHash, validUntilMicros: .max))
            for previous in region.previousTokens {
                credentials.append(
                    Credential(
                        principal: .region(region.name), hash: previous.tokenHash,
                        validUntilMicros: previous.validUntilMicros))
            }
        }
        credentials.append(Credential(principal: .admin, hash: settings.adminTokenHash, validUntilMicros: .max))
        for previous in settings.adminPreviousTokens {
            credentials.append(
                Credential(principal: .admin, hash: previous.tokenHash, validUntilMicros: previous.validUntilMicros))
        }
        if let hash = settings.metricsTokenHash {
            credentials.append(Credential(principal: .scraper, hash: hash, validUntilMicros: .max))
        }
        self.credentials = credentials
        self.metricsPublic = settings.metricsPublic
        self.clock = clock
    }

    func identify(_ request: HTTPRequest) throws(HTTPError) -> Principal {
        guard let token = request.bearerToken, !token.isEmpty else {
            throw HTTPError(
                401, code: "unauthorized", "a bearer token is required",
                headers: ["www-authenticate": "Bearer"])
        }
        let hash = TLSDigest.sha256(Array(token.utf8))
        let now = clock()
        var found: Principal?
        var expired = false
        for credential in credentials {
            let matches = TLSDigest.constantTimeEquals(hash, credential.hash)
            guard matches, found == nil else { continue }
            if now < credential.validUntilMicros { found = credential.principal } else { expired = true }
        }
        guard let found else {
            let why = expired ? "the bearer token has expired (it was rotated)" : "the bearer token is not valid"
            throw HTTPError(401, code: "unauthorized", why, headers: ["www-authenticate": "Bearer"])
        }
        return found
    }

    /// The region a region endpoint is called by.
    func region(_ request: HTTPRequest) throws(HTTPError) -> String {
        guard case .region(let name) = try identify(request) else {
            throw HTTPError(403, code: "forbidden", "this endpoint takes a region token")
        }
        return name
    }

    /// Checks `/metrics`: the scrape token or the admin token, or nothing when it is public. Returns who called.
    func metrics(_ request: HTTPRequest) throws(HTTPError) -> Principal? {
        if metricsPublic { return nil }
        let principal = try identify(request)
        guard principal == .admin || principal == .scraper else {
            throw HTTPError(403, code: "forbidden", "/metrics takes the scrape token (metrics_token) or the admin token")
        }
        return principal
    }

    /// Checks an admin endpoint's token.
    func admin(_ request: HTTPRequest) throws(HTTPError) {
        guard case .admin = try identify(request) else {
            throw HTTPError(403, code: "forbidden", "this endpoint takes the admin token")
        }
    }
}
