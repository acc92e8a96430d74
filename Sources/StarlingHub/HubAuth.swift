import StarlingHTTP2
import StarlingTLS

/// Bearer-token authentication: the presented token's SHA-256 is compared in constant time with every
/// configured hash (no early exit, so timing says nothing about which or how many bytes matched).
/// 401 for a missing or unknown token, 403 for a valid token on the wrong kind of endpoint.
struct HubAuth: Sendable {
    /// Who a valid token belongs to.
    enum Principal: Sendable, Hashable {
        case region(String)
        case admin
    }

    private let regions: [(name: String, hash: [UInt8])]
    private let adminHash: [UInt8]

    init(settings: HubSettings) {
        regions = settings.regions.map { ($0.name, $0.tokenHash) }
        adminHash = settings.adminTokenHash
    }

    func identify(_ request: HTTPRequest) throws(HTTPError) -> Principal {
        guard let token = request.bearerToken, !token.isEmpty else {
            throw HTTPError(
                401, code: "unauthorized", "a bearer token is required",
                headers: ["www-authenticate": "Bearer"])
        }
        let hash = TLSDigest.sha256(Array(token.utf8))
        var found: Principal?
        for region in regions where TLSDigest.constantTimeEquals(hash, region.hash) && found == nil {
            found = .region(region.name)
        }
        if TLSDigest.constantTimeEquals(hash, adminHash) && found == nil { found = .admin }
        guard let found else {
            throw HTTPError(
                401, code: "unauthorized", "the bearer token is not valid", headers: ["www-authenticate": "Bearer"])
        }
        return found
    }

    /// The region a region endpoint is called by.
    func region(_ request: HTTPRequest) throws(HTTPError) -> String {
        guard case .region(let name) = try identify(request) else {
            throw HTTPError(403, code: "forbidden", "this endpoint takes a region token, not the admin token")
        }
        return name
    }

    /// Checks an admin endpoint's token.
    func admin(_ request: HTTPRequest) throws(HTTPError) {
        guard case .admin = try identify(request) else {
            throw HTTPError(403, code: "forbidden", "this endpoint takes the admin token")
        }
    }
}
