@testable import StarlingHTTP2
import Testing

@Suite("router, query parsing, URLs")
struct RouterTests {
    static func router() -> Router {
        var router = Router()
        router.add("GET", "/v1/changes", .immediate { _ in .text(200, "list") })
        router.add("POST", "/v1/changes", .immediate { _ in .text(200, "push") })
        router.add("POST", "/v1/conflicts/{id}/resolve", .immediate { _ in .text(200, "resolve") })
        router.add("GET", "/", .immediate { _ in .text(200, "root") })
        router.add("GET", "/v1/reconcile/{id}", .immediate { _ in .text(200, "report") })
        router.add("POST", "/v1/reconcile/answer", .immediate { _ in .text(200, "answer") })
        return router
    }

    @Test("method, path and parameters select the route", arguments: [
        ("GET", "/v1/changes", "found", ""),
        ("POST", "/v1/changes", "found", ""),
        ("HEAD", "/v1/changes", "found", ""),
        ("DELETE", "/v1/changes", "405:GET,POST", ""),
        ("POST", "/v1/conflicts/17/resolve", "found", "17"),
        ("POST", "/v1/conflicts/a%20b/resolve", "found", "a b"),
        ("POST", "/v1/conflicts/%zz/resolve", "404", ""),
        ("POST", "/v1/conflicts//resolve", "404", ""),
        ("GET", "/v1/changes/extra", "404", ""),
        ("GET", "/", "found", ""),
        ("GET", "//v1///changes", "found", ""),
        ("GET", "/v1/reconcile/7", "found", "7"),
        ("POST", "/v1/reconcile/answer", "found", ""),
        ("GET", "/v1/reconcile/answer", "405:POST", ""),  // a literal path wins over `{id}`
        ("PUT", "/v1/reconcile/7", "405:GET", ""),
    ])
    func matching(method: String, path: String, expected: String, parameter: String) {
        switch Self.router().match(method: method, path: path) {
        case .found(_, let parameters):
            #expect(expected == "found")
            #expect((parameters["id"] ?? "") == parameter)
        case .methodNotAllowed(let allowed):
            #expect(expected == "405:" + allowed.joined(separator: ","))
        case .notFound:
            #expect(expected == "404")
        }
    }

    @Test("query strings decode percent escapes and plus; the first repeated name wins; bad escapes are dropped")
    func query() {
        let request = HTTPRequest(method: "GET", path: "/", rawQuery: "after=10&limit=5&q=a+b%2Bc&after=99&bad=%G1&empty")
        #expect(request.query["after"] == "10")
        #expect(request.query["limit"] == "5")
        #expect(request.query["q"] == "a b+c")
        #expect(request.query["bad"] == nil)
        #expect(request.query["empty"] == "")
    }

    @Test("bearer tokens are read case-insensitively and trimmed")
    func bearer() {
        var request = HTTPRequest(method: "GET", path: "/")
        #expect(request.bearerToken == nil)
        request.headers.add("authorization", "Bearer  abc ")
        #expect(request.bearerToken == "abc")
        request.headers.set("authorization", "Basic abc")
        #expect(request.bearerToken == nil)
    }

    @Test("error bodies are JSON with escaped text")
    func errorShape() {
        let response = HTTPResponse.error(400, code: "bad", message: "quote \" backslash \\ newline \n tab \t bell \u{7}")
        #expect(String(decoding: response.body, as: UTF8.self)
                == #"{"error":{"code":"bad","message":"quote \" backslash \\ newline \n tab \t bell \u0007"}}"#)
        #expect(response.headers["Content-Type"] == "application/json")
    }

    @Test("base URLs parse into scheme, host and port; bad ones are refused", arguments: [
        ("https://127.0.0.1:8443", "tls 127.0.0.1 8443"),
        ("http://localhost:80/", "h2c localhost 80"),
        ("https://hub.example.com", "tls hub.example.com 443"),
        ("https://[::1]:9000", "tls ::1 9000"),
        ("ftp://x", "error"),
        ("https://x:0", "error"),
        ("https://x:99999", "error"),
        ("https://x/path", "error"),
        ("https://:80", "error"),
    ])
    func urls(text: String, expected: String) {
        do {
            let url = try ParsedURL(text)
            #expect(expected == "\(url.isTLS ? "tls" : "h2c") \(url.host) \(url.port)")
        } catch {
            #expect(expected == "error")
        }
    }
}

@Suite("gzip")
struct GzipTests {
    @Test("compress and decompress round-trip, including empty input")
    func roundTrip() throws {
        for input in [[], Array("hello".utf8), [UInt8](repeating: 7, count: 300_000), (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 131) }] {
            let compressed = try Gzip.compress(input)
            #expect(compressed.starts(with: [0x1F, 0x8B]))
            #expect(try Gzip.decompress(compressed, maxBytes: 1 << 20) == input)
        }
    }

    @Test("the room reserved for the output is the trailer's size when plausible, never above the limit")
    func expectedSize() throws {
        let input = (0..<500_000).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let compressed = try Gzip.compress(input)
        #expect(Gzip.expectedSize(of: compressed, maxBytes: 1 << 20) == input.count)
        #expect(Gzip.expectedSize(of: compressed, maxBytes: 100_000) == 100_000)
        // A trailer claiming more than deflate can expand to is ignored.
        var forged = try Gzip.compress(Array("tiny".utf8))
        forged.replaceSubrange(forged.count - 4..<forged.count, with: [0xFF, 0xFF, 0xFF, 0x7F])
        #expect(Gzip.expectedSize(of: forged, maxBytes: 1 << 30) == 1024)
        #expect(throws: HTTP2Error.self) { try Gzip.decompress(forged, maxBytes: 1 << 30) }
    }

    @Test("the output limit stops a bomb; truncated, trailing and garbage input are refused")
    func refusals() throws {
        let bomb = try Gzip.compress([UInt8](repeating: 0, count: 2_000_000))
        #expect { try Gzip.decompress(bomb, maxBytes: 1_000_000) } throws: { ($0 as? HTTP2Error)?.code == .bodyTooLarge }
        let good = try Gzip.compress(Array("some text to compress".utf8))
        #expect(throws: HTTP2Error.self) { try Gzip.decompress(Array(good.dropLast(4)), maxBytes: 1000) }
        #expect(throws: HTTP2Error.self) { try Gzip.decompress(good + [1, 2, 3], maxBytes: 1000) }
        #expect(throws: HTTP2Error.self) { try Gzip.decompress(Array("not gzip".utf8), maxBytes: 1000) }
        #expect(throws: HTTP2Error.self) { try Gzip.decompress([], maxBytes: 1000) }
    }
}
