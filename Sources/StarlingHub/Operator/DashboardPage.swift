import StarlingHTTP2

/// The dashboard served at `GET /`: one self-contained HTML page (inline CSS and JavaScript, no external
/// assets, works offline) that polls the admin JSON endpoints with a token the operator types in.
///
/// The server never embeds a token or any data in the page; it is the same bytes for everybody except the CSP
/// nonce. Content-Security-Policy choice: the inline `<style>` and `<script>` carry a fresh random nonce per
/// response and the policy allows only those (`script-src 'nonce-…'`, `style-src 'nonce-…'`), not
/// `'unsafe-inline'`. A nonce costs one random draw and a copy of ~30 KiB per page load, and it means an
/// injected `<script>` or `style=` attribute (say, a row value that slipped into markup) would not run; the page
/// also only ever inserts data with `textContent`. `connect-src 'self'` limits fetches to this hub;
/// `frame-ancestors 'none'` and `form-action 'none'` rule out clickjacking and form posts elsewhere.
///
/// The page is the file `Sources/StarlingHub/Resources/dashboard.html`, embedded in the binary by SwiftPM
/// (`embedInCode`). `{{NONCE}}` marks where the per-response CSP nonce goes. Data only ever enters the DOM
/// through `textContent` and `setAttribute` on SVG geometry, never through `innerHTML`.
///
/// Immutable after `init`; `Sendable` and shared by every loop.
struct DashboardPage: Sendable {
    /// The page split at each nonce placeholder; the nonce goes between consecutive parts.
    private let parts: [[UInt8]]

    static let noncePlaceholder = "{{NONCE}}"

    /// The page source as embedded in the binary.
    static let html = String(decoding: PackageResources.dashboard_html, as: UTF8.self)

    init(html: String = DashboardPage.html) {
        var parts: [[UInt8]] = []
        var rest = Substring(html)
        while let range = rest.range(of: Self.noncePlaceholder) {
            parts.append(Array(rest[..<range.lowerBound].utf8))
            rest = rest[range.upperBound...]
        }
        parts.append(Array(rest.utf8))
        self.parts = parts
    }

    /// A fresh nonce: 128 random bits from the system CSPRNG, as hex (a valid CSP base64-value).
    static func makeNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(32)
        for _ in 0..<2 {
            let word = generator.next() as UInt64
            for shift in stride(from: 60, through: 0, by: -4) { text.append(digits[Int((word >> UInt64(shift)) & 0xF)]) }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The page with `nonce` in every placeholder and the headers that go with it.
    func response(nonce: String) -> HTTPResponse {
        let nonceBytes = Array(nonce.utf8)
        var body: [UInt8] = []
        body.reserveCapacity(parts.reduce(0) { $0 + $1.count } + nonceBytes.count * parts.count)
        for (index, part) in parts.enumerated() {
            if index > 0 { body.append(contentsOf: nonceBytes) }
            body.append(contentsOf: part)
        }
        let policy = [
            "default-src 'none'", "script-src 'nonce-\(nonce)'", "style-src 'nonce-\(nonce)'",
            "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
        ].joined(separator: "; ")
        return HTTPResponse(
            status: 200,
            headers: [
                "content-type": "text/html; charset=utf-8", "content-security-policy": policy,
                "cache-control": "no-store", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
                "x-frame-options": "DENY",
            ], body: body)
    }
}
