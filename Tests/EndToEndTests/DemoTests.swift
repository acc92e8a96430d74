import Foundation
import Glibc
import StarlingTestSupport
import Testing

/// `starling demo` is what a newcomer runs first: it must converge, and Ctrl-C must leave nothing behind.
@Suite("starling demo", .serialized, .timeLimit(.minutes(4)))
struct DemoTests {
    /// Runs from the repository root, as ops/demo does (the binary carries its migrations).
    static var repositoryRoot: String {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<2 { directory = directory.deletingLastPathComponent() }
        return directory.path
    }

    static func demoDirectories() -> Set<String> {
        Set(((try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? [])
            .filter { $0.hasPrefix("starling-demo-") })
    }

    @Test("a short demo with three regions converges and reports conflicts under every policy")
    func demoConverges() async throws {
        let binary = try StarlingBinary.path()
        let result = try await ProcessRunner.run(binary, ["demo", "--regions", "3", "--duration", "6", "--rate", "90",
                                                          "--seed", "42"], workingDirectory: Self.repositoryRoot,
                                                 timeout: .seconds(200))
        #expect(result.exitCode == 0, "\(result.transcript)")
        #expect(result.stdout.contains("converged: every table is identical in all 3 regions"), "\(result.transcript)")
        #expect(result.stdout.contains("seed 42"))
        #expect(result.stdout.contains("dashboard:   https://127.0.0.1:"))
        for policy in ["lww", "merge", "priority", "reject"] {
            #expect(result.stdout.contains("  \(policy) "), "no \(policy) conflicts in the summary:\n\(result.stdout)")
        }
    }

    @Test("Ctrl-C stops the demo and removes its Postgres and temp directory")
    func interruptCleansUp() async throws {
        let binary = try StarlingBinary.path()
        let before = Self.demoDirectories()
        let process = try ChildProcess.launch(binary, ["demo", "--regions", "2", "--duration", "120", "--rate", "20"],
                                              workingDirectory: Self.repositoryRoot)
        _ = try await process.waitForOutputLine(containing: "workload", timeout: .seconds(120))
        let created = Self.demoDirectories().subtracting(before)
        #expect(created.count == 1, "\(created)")
        process.signal(SIGINT)
        let status = try await process.waitForExit(timeout: .seconds(60))
        #expect(status != 0 || process.output.contains("interrupted"), "\(process.output)")
        #expect(Self.demoDirectories().subtracting(before).isEmpty, "left behind: \(Self.demoDirectories().subtracting(before))")
        for directory in created {
            let postmasters = try await ProcessRunner.run("pgrep", ["-f", "postgres -D \(NSTemporaryDirectory())\(directory)"])
            #expect(postmasters.stdout.isEmpty, "a demo postgres still runs: \(postmasters.stdout)")
        }
    }
}
