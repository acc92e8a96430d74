import StarlingHTTP2
import StarlingTLS
import StarlingTestSupport
import Testing

@Suite("real HTTP/2 clients: curl, httpx, h2load", .timeLimit(.minutes(3)))
struct InteropTests {
    @Test("curl --http2 over TLS verifies the server with the test CA and negotiates HTTP/2")
    func curlTLS() async throws {
        let (server, certificates) = try ClientServerTests.tlsServer()
        let result = try await ProcessRunner.run("curl", [
            "-sS", "--http2", "--cacert", certificates.caCertificatePath, "-w", "\n%{http_version} %{http_code}",
            "\(server.tlsURL)/hello",
        ])
        #expect(result.stdout == "hello\n2 200", "\(result.transcript)")
        await server.stop()
    }

    @Test("HTTP/1.1 on the TLS port is refused at ALPN; the server goes on serving HTTP/2")
    func http1OnTLSPortRefused() async throws {
        let (server, certificates) = try ClientServerTests.tlsServer()
        let refused = try await ProcessRunner.run("curl", [
            "-sS", "--http1.1", "--cacert", certificates.caCertificatePath, "\(server.tlsURL)/hello",
        ])
        #expect(refused.exitCode != 0, "\(refused.transcript)")
        #expect(refused.stdout.isEmpty)
        let good = try await ProcessRunner.run("curl", [
            "-sS", "--http2", "--cacert", certificates.caCertificatePath, "\(server.tlsURL)/hello",
        ])
        #expect(good.stdout == "hello", "\(good.transcript)")
        #expect(server.server.counters.snapshot().tlsFailures >= 1)
        await server.stop()
    }

    @Test("curl with and without a client certificate against a server that requires mTLS")
    func curlMutualTLS() async throws {
        let (server, certificates) = try ClientServerTests.tlsServer(clientCertificates: .required)
        let anonymous = try await ProcessRunner.run("curl", [
            "-sS", "--http2", "--cacert", certificates.caCertificatePath, "\(server.tlsURL)/hello",
        ])
        #expect(anonymous.exitCode != 0, "\(anonymous.transcript)")
        let authenticated = try await ProcessRunner.run("curl", [
            "-sS", "--http2", "--cacert", certificates.caCertificatePath, "--cert", certificates.clientCertificatePath,
            "--key", certificates.clientKeyPath, "\(server.tlsURL)/hello",
        ])
        #expect(authenticated.stdout == "hello", "\(authenticated.transcript)")
        await server.stop()
    }

    @Test("Python httpx with http2=True gets HTTP/2 responses over TLS and h2c-less TLS verification")
    func httpx() async throws {
        let (server, certificates) = try ClientServerTests.tlsServer()
        let result = try await Fixtures.runH2Client(["httpx", "\(server.tlsURL)/items/5?q=z", certificates.caCertificatePath])
        #expect(result.stdout == "HTTP/2 200 item 5 q=z\n", "\(result.transcript)")
        await server.stop()
    }

    @Test("h2load finishes a 10k-request burst with zero errors, h2c and TLS", arguments: [false, true])
    func h2loadBurst(tls: Bool) async throws {
        let server: TestServer
        if tls {
            server = try ClientServerTests.tlsServer().0
        } else {
            server = try TestServer.start()
        }
        let url = tls ? "\(server.tlsURL)/hello" : "\(server.h2cURL)/hello"
        let result = try await ProcessRunner.run("h2load", ["-n", "10000", "-c", "10", "-m", "32", url])
        #expect(result.stdout.contains("10000 succeeded, 0 failed, 0 errored, 0 timeout"), "\(result.transcript)")
        await server.stop()
    }

    @Test("h2load POSTs with bodies through async handlers: zero errors")
    func h2loadPost() async throws {
        let server = try TestServer.start()
        let body = try TemporaryFile(contents: [UInt8](repeating: 98, count: 4096))
        let result = try await ProcessRunner.run("h2load", ["-n", "5000", "-c", "4", "-m", "16", "-d", body.path,
                                                            "\(server.h2cURL)/echo"])
        #expect(result.stdout.contains("5000 succeeded, 0 failed, 0 errored, 0 timeout"), "\(result.transcript)")
        body.remove()
        await server.stop()
    }
}

