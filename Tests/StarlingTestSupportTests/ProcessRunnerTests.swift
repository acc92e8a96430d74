import Foundation
import StarlingTestSupport
import Testing

/// The test support's process runner never waits forever: every suite that runs a tool goes through it, and a run
/// that never returns hangs the whole test process (its time limit records an issue but cannot end the wait).
@Suite(.timeLimit(.minutes(1)))
struct ProcessRunnerTests {
    /// A child that leaves a descendant holding its output open (a server it started) returns shortly after its
    /// exit with what it wrote. Before: the reader waited for EOF, which came only when the descendant ended.
    @Test func aDescendantHoldingTheOutputDoesNotHoldTheRun() async throws {
        // Measured on the runner's thread: a CI run took 40 s by the test's own clock while the runner had given
        // up after 10 (its output said so), its task waiting for a thread of the cooperative pool meanwhile.
        let result = try await ProcessRunner.run("/bin/bash", ["-c", "sleep 40 & echo started"])
        #expect(result.elapsed < .seconds(30), "the run waited for the descendant: \(result.elapsed)")
        #expect(result.exitCode == 0)
        #expect(result.stdout == "started\n")
        #expect(result.stderr.contains("output still open"), "\(result.transcript)")
    }

    /// A child that ignores SIGTERM at its timeout is killed.
    @Test func aChildIgnoringTerminationIsKilled() async throws {
        let result = try await ProcessRunner.run("/bin/bash", ["-c", "trap '' TERM; echo ready; sleep 60"],
                                                 timeout: .seconds(1))
        #expect(result.elapsed < .seconds(40), "the run waited for the child's own end: \(result.elapsed)")
        #expect(result.timedOut)
        #expect(result.stdout == "ready\n")
    }

    /// A child inherits its three standard descriptors only. Before: a pipe this process opened without O_CLOEXEC
    /// (Foundation's `Pipe`, on another thread) stayed open in the child, and a reader waiting for that pipe's EOF
    /// waited for the child's end (certificate generation waited for an h2load run that waited for it).
    @Test func aChildInheritsOnlyItsStandardDescriptors() async throws {
        var leaked: [Int32] = [-1, -1]
        try #require(pipe(&leaked) == 0)  // no O_CLOEXEC, as Foundation's Pipe
        defer { close(leaked[0]); close(leaked[1]) }
        let probe = "[ -e /proc/self/fd/\(leaked[1]) ] && echo inherited || echo closed"
        let result = try await ProcessRunner.run("/bin/sh", ["-c", probe])
        #expect(result.stdout == "closed\n", "\(result.transcript)")
        let synchronous = try ProcessRunner.runNow("/bin/sh", ["-c", probe])
        #expect(synchronous.stdout == "closed\n", "\(synchronous.transcript)")
    }

    /// Plain runs keep both streams apart and complete.
    @Test func bothStreamsAreRead() async throws {
        let result = try await ProcessRunner.run("/bin/bash", ["-c", "head -c 200000 /dev/zero | tr '\\0' a; echo err >&2"])
        #expect(result.stdout.count == 200_000)
        #expect(result.stderr == "err\n")
        #expect(!result.timedOut)
    }
}
