import StarlingHTTP2
import StarlingTestSupport
import Synchronization
import Testing

/// Each attack comes from a real hostile HTTP/2 client (Fixtures/h2_client.py, raw frames). The offender must be
/// refused cleanly while a well-behaved client on another connection keeps being served.
@Suite("hostile clients are refused, everyone else is served", .timeLimit(.minutes(3)))
struct AbuseTests {
    /// What the good client saw while an attack ran.
    struct GoodClientTally: Sendable {
        var served = 0
        /// Requests in flight at some moment of the attack: sent before the attacker's process ended and
        /// answered (correctly) after the server had accepted the attacker's first connection. Counting requests
        /// sent and answered strictly inside the attack is not robust: a rejected connection lasts milliseconds,
        /// and on a loaded machine the whole attack can fall between two answers.
        var servedAcrossAttack = 0
        var failures: [String] = []
    }

    /// Set once the attacker's process has ended.
    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .sequentiallyConsistent) }
        var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
    }

    /// Runs `attack` against a fresh server while a good client, already connected, sends requests back to back
    /// on its own connection until the attacker's process has ended; returns the attack's result line and the
    /// server's counters. The good client must get every answer right, and have requests in flight during the attack.
    static func underAttack(_ attack: String, limits: HTTP2Limits = HTTP2Limits()) async throws -> (String, HTTP2ServerCounters.Snapshot) {
        let server = try TestServer.start(limits: limits)
        let client = try HTTP2Client(configuration: HTTP2ClientConfiguration(baseURL: server.h2cURL))
        #expect(try await client.send(HTTPClientRequest(method: "GET", path: "/hello")).status == 200)
        #expect(server.server.counters.snapshot().connectionsAccepted == 1)  // the good client's connection
        let attackEnded = Flag()
        async let tally = Self.serve(client, server, until: attackEnded)
        let result: ProcessRunner.Result
        do {
            result = try await Fixtures.runH2Client([attack, "127.0.0.1", String(server.port)])
            attackEnded.set()
        } catch {
            attackEnded.set()
            _ = await tally
            throw error
        }
        let good = await tally
        // The good client is still served after the attack finished, too.
        let after = try await client.send(HTTPClientRequest(method: "GET", path: "/hello"))
        #expect(good.failures.isEmpty, "\(good.failures)")
        #expect(good.servedAcrossAttack >= 1, "no good request was in flight during the attack (\(good.served) in all)")
        #expect(after.status == 200)
        #expect(result.exitCode == 0, "\(result.transcript)")
        let line = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let counters = server.server.counters.snapshot()
        client.shutdown()
        await server.stop()
        return (line, counters)
    }

    /// The good client's loop: echo requests back to back until `attackEnded`.
    static func serve(_ client: HTTP2Client, _ server: TestServer, until attackEnded: Flag) async -> GoodClientTally {
        var tally = GoodClientTally()
        var index = 0
        while !attackEnded.isSet {
            index += 1
            let sentBeforeTheEnd = !attackEnded.isSet
            let body = Array("g\(index)".utf8)
            do {
                let response = try await client.send(HTTPClientRequest(method: "POST", path: "/echo", body: body))
                guard response.status == 200, response.body == body else {
                    tally.failures.append("request \(index): status \(response.status)")
                    continue
                }
                tally.served += 1
                let answeredAfterTheStart = server.server.counters.snapshot().connectionsAccepted >= 2
                if sentBeforeTheEnd && answeredAfterTheStart { tally.servedAcrossAttack += 1 }
            } catch {
                tally.failures.append("request \(index): \(error)")
            }
        }
        return tally
    }

    /// Connections the garbage and http1 attacks open one after another (`BURST_CONNECTIONS` in h2_client.py).
    static let burstConnections = 20

    /// The value of `name:` in an attack's result line (`s3:431` → "431").
    static func field(_ name: String, in line: String) -> String? {
        line.split(separator: " ").first { $0.hasPrefix(name + ":") }.map { String($0.dropFirst(name.count + 1)) }
    }

    @Test("a garbage preface closes that connection, each of a burst of them")
    func garbagePreface() async throws {
        let (line, counters) = try await Self.underAttack("garbage")
        #expect(line.contains("closed:True") && !line.contains("closed:False"), "\(line)")
        #expect(counters.protocolErrors == Self.burstConnections)
    }

    @Test("HTTP/1.1 on the h2c port gets a 505 and the connection closes, each of a burst of them")
    func http1OnH2CPort() async throws {
        let (line, counters) = try await Self.underAttack("http1")
        #expect(line == "result=HTTP/1.1 505 HTTP Version Not Supported", "\(line)")
        #expect(counters.protocolErrors == Self.burstConnections)
    }

    @Test("opening more streams than SETTINGS_MAX_CONCURRENT_STREAMS refuses exactly the excess streams")
    func tooManyStreams() async throws {
        var limits = HTTP2Limits()
        limits.maxConcurrentStreams = 16
        let (line, counters) = try await Self.underAttack("too_many_streams", limits: limits)
        // 400 streams opened, none ended: the 16 allowed stay open, each one beyond gets RST_STREAM(REFUSED_STREAM)
        // and the connection stays up (the refusals stay under maxRefusedStreams).
        #expect(Self.field("refused", in: line) == String(400 - 16), "\(line)")
        #expect(line.contains("goaway:None closed:False"), "\(line)")
        #expect(counters.abusiveConnections == 0)
    }

    @Test("rapid reset (CVE-2023-44487) ends in GOAWAY ENHANCE_YOUR_CALM, counted as abuse")
    func rapidReset() async throws {
        let (line, counters) = try await Self.underAttack("rapid_reset")
        #expect(line.contains("goaway:11"), "\(line)")
        #expect(counters.abusiveConnections == 1)
    }

    @Test("a SETTINGS or PING flood ends in GOAWAY ENHANCE_YOUR_CALM, counted as abuse",
          arguments: ["settings_flood", "ping_flood"])
    func controlFloods(attack: String) async throws {
        let (line, counters) = try await Self.underAttack(attack)
        #expect(line == "result=goaway:11 closed:True", "\(line)")
        #expect(counters.abusiveConnections == 1)
    }

    @Test("an HPACK bomb (tiny block decoding to megabytes) is refused with 431; the connection and stream 1 live on")
    func hpackBomb() async throws {
        let (line, _) = try await Self.underAttack("hpack_bomb")
        #expect(Self.field("s1", in: line) == "200", "\(line)")
        #expect(Self.field("s3", in: line) == "431", "\(line)")
        #expect(line.contains("goaway:None closed:False"), "\(line)")
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
