import Foundation
import StarlingCore
import StarlingHTTP2
import StarlingTestSupport
import Testing

/// The real `starling hub` binary as a child process, reading its listen address from stdout.
final class HubProcess: @unchecked Sendable {  // `process` and `output` are touched by the test's task only.
    let process = Process()
    private let output = Pipe()
    private let errors = Pipe()

    init(config: String) throws {
        process.executableURL = URL(fileURLWithPath: try StarlingBinary.path())
        process.arguments = ["hub", "--config", config, "--log-level", "warning"]
        process.standardOutput = output
        process.standardError = errors
        try process.run()
    }

    /// Waits (on a dedicated thread) for the `listening host:port` line and returns the port.
    func port() async throws -> Int {
        let handle = output.fileHandleForReading
        let line: String = await withCheckedContinuation { continuation in
            Thread {
                var text = ""
                while !text.contains("\n") {
                    let data = handle.availableData
                    if data.isEmpty { break }
                    text += String(decoding: data, as: UTF8.self)
                }
                continuation.resume(returning: text)
            }.start()
        }
        guard
            let port = line.split(separator: ":").last.flatMap({
                Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
            })
        else {
            let stderr = String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
            throw HubProcessError(message: "no listening line: \(line) \(stderr)")
        }
        return port
    }

    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func terminate() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}

struct HubProcessError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

@Suite(.timeLimit(.minutes(2)))
struct HubCrashTests {
    @Test func acknowledgedPushesSurviveKillNine() async throws {
        // Proves durability: entries acknowledged before a SIGKILL of the hub are there after a restart.
        try await TestDatabase.with { database in
            let directory =
                NSTemporaryDirectory() + "starling-hub-crash-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let config = directory + "/hub.yaml"
            try """
            listen: 127.0.0.1:0
            database: "\(database.url)"
            admin_token: "admin-token"
            regions:
              - {name: r1, token: "token-r1"}
              - {name: r2, token: "token-r2"}
            tables:
              - {name: public.items, policy: lww}
            """.write(toFile: config, atomically: true, encoding: .utf8)

            let first = try HubProcess(config: config)
            var acknowledged: [Int64] = []
            do {
                let port = try await first.port()
                let client = try HTTP2Client(configuration: .init(baseURL: "http://127.0.0.1:\(port)"))
                defer { client.shutdown() }
                for push in 0..<5 {
                    let changes = (0..<20).map { Changes.insert("r1", push * 20 + $0 + 1, id: Int64(push * 20 + $0)) }
                    let body: JSONValue = ["changes": .array(changes)]
                    let response = try await client.send(
                        HTTPClientRequest(
                            method: "POST", path: "/v1/changes", headers: ["authorization": "Bearer token-r1"],
                            body: body.serialized()))
                    #expect(response.status == 200)
                    let results = try JSONValue(parsing: response.body)["results"]?.arrayValue ?? []
                    acknowledged += results.compactMap { $0["seq"]?.int64Value }
                }
            } catch {
                first.kill9()
                throw error
            }
            first.kill9()
            #expect(acknowledged.count == 100)

            let second = try HubProcess(config: config)
            defer { second.terminate() }
            let port = try await second.port()
            let client = try HTTP2Client(configuration: .init(baseURL: "http://127.0.0.1:\(port)"))
            defer { client.shutdown() }
            let response = try await client.send(
                HTTPClientRequest(
                    method: "GET", path: "/v1/changes?after=0&limit=1000", headers: ["authorization": "Bearer token-r2"]
                ))
            let page = try JSONValue(parsing: response.body)
            let seqs = page["entries"]?.arrayValue?.compactMap { $0["seq"]?.int64Value } ?? []
            #expect(seqs == acknowledged)
            #expect(page["head"] == 100)
        }
    }
}
