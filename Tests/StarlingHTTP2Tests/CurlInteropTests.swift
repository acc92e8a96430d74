import StarlingHTTP2
import StarlingTestSupport
import Testing

@Suite("curl against our server", .timeLimit(.minutes(2)))
struct CurlInteropTests {
    @Test("curl --http2-prior-knowledge speaks HTTP/2 to the h2c server and gets routed bodies")
    func h2cPriorKnowledge() async throws {
        let server = try TestServer.start()
        defer { Task { await server.stop() } }
        let result = try await ProcessRunner.run("curl", [
            "-sS", "--http2-prior-knowledge", "-w", "\n%{http_version} %{http_code}",
            "\(server.h2cURL)/items/42?q=a%20b",
        ])
        #expect(result.exitCode == 0, "\(result.transcript)")
        #expect(result.stdout == "item 42 q=a b\n2 200", "\(result.transcript)")
    }

    @Test("curl posts a body through an async handler and gets it back; unknown routes get JSON 404")
    func postEchoAndNotFound() async throws {
        let server = try TestServer.start()
        defer { Task { await server.stop() } }
        let echo = try await ProcessRunner.run("curl", [
            "-sS", "--http2-prior-knowledge", "--data-binary", "@-", "\(server.h2cURL)/echo",
        ], stdin: Array("payload ü".utf8))
        #expect(echo.stdout == "payload ü", "\(echo.transcript)")
        let missing = try await ProcessRunner.run("curl", [
            "-sS", "--http2-prior-knowledge", "-w", "\n%{http_code}", "\(server.h2cURL)/nope",
        ])
        #expect(missing.stdout == "{\"error\":{\"code\":\"not_found\",\"message\":\"no route for /nope\"}}\n404",
                "\(missing.transcript)")
    }
}
