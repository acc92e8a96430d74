import Foundation
import StarlingTestSupport
import Testing

/// The ops scripts' temp dirs (ops/lib/common.sh `starling_tmpdir`) go away when the script exits. Before: every
/// caller took the dir from a command substitution, whose subshell lost the removal the function registered, and
/// each ops/test run left its 4 GB in /tmp until the disk filled.
@Suite(.timeLimit(.minutes(1)))
struct OpsCleanupTests {
    static let common = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("ops/lib/common.sh").path

    private func tmpdir(keep: Bool) async throws -> String {
        let script = ". \"$1\"; starling_tmpdir cleanup-check tmp; touch \"$tmp/file\"; echo \"$tmp\""
        var environment = ProcessInfo.processInfo.environment
        environment["STARLING_KEEP"] = keep ? "1" : "0"
        let result = try await ProcessRunner.run(
            "/bin/bash", ["-c", script, "check", Self.common], environment: environment)
        #expect(result.exitCode == 0, "\(result.transcript)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func theTempDirIsRemovedOnExit() async throws {
        let dir = try await tmpdir(keep: false)
        #expect(dir.hasPrefix("/tmp/starling-cleanup-check."))
        #expect(!FileManager.default.fileExists(atPath: dir), "\(dir) outlived its script")
    }

    @Test func keepLeavesIt() async throws {
        let dir = try await tmpdir(keep: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(FileManager.default.fileExists(atPath: "\(dir)/file"))
    }
}
