import StarlingHTTP2

/// The operator-facing routes that serve documents rather than data: the dashboard page at `GET /` and the
/// OpenAPI description at `GET /openapi.json`. Both are files under `Resources/` embedded in the binary by SwiftPM
/// (no files to deploy next to it), so both handlers are `.immediate`: they run on the event loop and never block.
extension HubAPI {
    /// `GET /`: the dashboard page, with a fresh script nonce per response.
    static func dashboard() -> HubHandler {
        let dashboard = DashboardPage()
        return .immediate { _ in dashboard.response(nonce: DashboardPage.makeNonce()) }
    }

    /// `GET /openapi.json`: the document, encoded once.
    static func openAPIDocument() -> HubHandler {
        let document = Array(HubOpenAPI.document.utf8)
        return .immediate { _ in
            HTTPResponse(
                status: 200,
                headers: [
                    "content-type": "application/json", "cache-control": "no-cache",
                    "x-content-type-options": "nosniff",
                ],
                body: document)
        }
    }
}
