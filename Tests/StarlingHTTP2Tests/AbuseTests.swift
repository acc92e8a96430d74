import StarlingHTTP2
import StarlingTestSupport
import Testing

/// Each attack comes from a real hostile HTTP/2 client (Fixtures/h2_client.py, raw frames). The offender must be
/// refused cleanly while a well-behaved client on another connection keeps being served.
@Suite("hostile clients are refused, everyone else is served", .timeLimit(.minutes(3)))
struct AbuseTests {
    /// Runs `attack` against a fresh server while a good client keeps sending requests; returns the attack's
    /// result line and the server for counter checks.
    static func underAttack(_ attack: String, limits: HTTP2Limits = HTTP2Limits()) async throws -> (String, HTTP2ServerCounters.Snapshot) {
        let server = try TestServer.start(limits: limits)
        let client = try HTTP2Client(configuration: HTTP2ClientConfiguration(baseURL: server.h2cURL))
        async let attackResult = Fixtures.runH2Client([attack, "127.0.0.1", String(server.port)])
        var goodResponses = 0
        for index in 0..<50 {
            let response = try await client.send(HTTPClientRequest(method: "POST", path: "/echo", body: Array("g\(index)".utf8)))
            if response.status == 200 && response.body == Array("g\(index)".utf8) { goodResponses += 1 }
        }
        let result = try await attackResult
        // The good client is still served after the attack finished, too.
        let after = try await client.send(HTTPClientRequest(method: "GET", path: "/hello"))
        #expect(goodResponses == 50)
        #expect(after.status == 200)
        #expect(result.exitCode == 0, "\(result.transcript)")
        let line = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let counters = server.server.counters.snapshot()
        client.shutdown()
        await server.stop()
        return (line, counters)
    }

    @Test("a garbage preface closes that connection")
    func garbagePreface() async throws {
        let (line, counters) = try await Self.underAttack("garbage")
        #expect(line.contains("closed:True"), "\(line)")
        #expect(counters.protocolErrors >= 1)
    }

    @Test("HTTP/1.1 on the h2c port gets a 505 and the connection closes")
    func http1OnH2CPort() async throws {
        let (line, _) = try await Self.underAttack("http1")
        #expect(line == "result=HTTP/1.1 505 HTTP Version Not Supported", "\(line)")
    }

    @Test("opening more streams than SETTINGS_MAX_CONCURRENT_STREAMS is refused")
    func tooManyStreams() async throws {
        var limits = HTTP2Limits()
        limits.maxConcurrentStreams = 16
        let (line, _) = try await Self.underAttack("too_many_streams", limits: limits)
        // nghttp2 answers excess streams with RST_STREAM(REFUSED_STREAM) or the connection with GOAWAY.
        let refusedCount = line.split(separator: " ").first { $0.hasPrefix("refused:") }.flatMap { Int($0.dropFirst(8)) } ?? 0
        #expect(refusedCount > 0 || line.contains("goaway:1") || line.contains("goaway:11"), "\(line)")
    }

    @Test("rapid reset (CVE-2023-44487) ends in GOAWAY ENHANCE_YOUR_CALM")
    func rapidReset() async throws {
        let (line, counters) = try await Self.underAttack("rapid_reset")
        #expect(line.contains("goaway:11"), "\(line)")
        #expect(counters.abusiveConnections >= 1 || line.contains("goaway:11"))
    }

    @Test("a SETTINGS flood ends in GOAWAY", arguments: ["settings_flood", "ping_flood"])
    func controlFloods(attack: String) async throws {
        let (line, _) = try await Self.underAttack(attack)
        #expect(line.contains("goaway:11") || line.contains("closed:True"), "\(line)")
        #expect(!line.contains("goaway:None closed:False"), "\(line)")
    }

    @Test("an HPACK bomb (tiny block decoding to megabytes) is refused with 431, the first request served")
    func hpackBomb() async throws {
        let (line, _) = try await Self.underAttack("hpack_bomb")
        #expect(line.contains("s1:200"), "\(line)")
        #expect(line.contains("s3:431") || line.contains("goaway:"), "\(line)")
        #expect(!line.contains("s3:200"), "\(line)")
    }

    @Test("a client that half-closes after its requests still gets every answer, then the server closes")
    func halfCloseIsAnswered() async throws {
        let (line, _) = try await Self.underAttack("half_close")
        #expect(line == "result=closed:True s1:200 s3:200 resets:0", "\(line)")
    }

    @Test("an oversized body is answered 413 while the server goes on serving")
    func oversizedBody() async throws {
        var limits = HTTP2Limits()
        limits.maxRequestBodyBytes = 100_000
        let server = try TestServer.start(limits: limits)
        let client = try HTTP2Client(configuration: HTTP2ClientConfiguration(baseURL: server.h2cURL))
        var body = [UInt8](repeating: 0, count: 300_000)
        for index in body.indices { body[index] = UInt8(truncatingIfNeeded: index &* 7919 >> 3) }
        let tooLarge = try await client.send(HTTPClientRequest(method: "POST", path: "/echo", body: body))
        #expect(tooLarge.status == 413)
        #expect(String(decoding: tooLarge.body, as: UTF8.self).contains("\"code\":\"body_too_large\""))
        let curl = try await ProcessRunner.run("curl", ["-sS", "--http2-prior-knowledge", "--data-binary", "@-",
                                                        "-w", "\n%{http_code}", "\(server.h2cURL)/echo"], stdin: body)
        #expect(curl.stdout.hasSuffix("\n413"), "\(curl.transcript)")
        let fine = try await client.send(HTTPClientRequest(method: "POST", path: "/echo", body: Array(body[0..<50_000])))
        #expect(fine.status == 200)
        #expect(fine.body.count == 50_000)
        client.shutdown()
        await server.stop()
    }

    @Test("a gzip bomb is refused with 413 without inflating it all")
    func gzipBomb() async throws {
        var limits = HTTP2Limits()
        limits.maxRequestBodyBytes = 1_000_000
        let server = try TestServer.start(limits: limits)
        let bomb = try Gzip.compress([UInt8](repeating: 0, count: 50_000_000), level: 9)
        #expect(bomb.count < 100_000)
        let client = try HTTP2Client(configuration: HTTP2ClientConfiguration(baseURL: server.h2cURL))
        let response = try await client.send(HTTPClientRequest(method: "POST", path: "/echo",
                                                               headers: ["content-encoding": "gzip"], body: bomb))
        #expect(response.status == 413)
        client.shutdown()
        await server.stop()
    }
}
