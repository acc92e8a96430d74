import Foundation
import StarlingTestSupport
import Testing

/// The production topology of ops/ha: the hub's store on a Patroni cluster (three members, synchronous
/// replication, etcd), two hubs on its multi-host URL, three regions under a write load. The drill kills the
/// leader's PostgreSQL (Patroni restarts it in place), then the whole leader member (another is promoted), then
/// two of the three etcd members (the DCS loses its quorum: nobody may write until it is back): each time the
/// hubs reconnect to the read-write member, take the sequencer lock again and go on, and nothing a
/// region committed is lost, no seq is missing or doubled (ops/ha --check prints the figures and fails if not).
@Suite(.serialized, .timeLimit(.minutes(12)))
struct PatroniFailoverTests {
    static var repositoryRoot: String { DemoTests.repositoryRoot }

    static func ha(_ arguments: [String], timeout: Duration) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run(repositoryRoot + "/ops/ha", arguments, workingDirectory: repositoryRoot,
                                    timeout: timeout)
    }

    @Test func theHubStoreSurvivesLosingItsPatroniLeader() async throws {
        let directory = NSTemporaryDirectory() + "starling-ha-test-\(getpid())"
        // Ports 30001-30052: above the range ops/test draws its own Postgres port from (20000-29999).
        let common = ["--dir", directory, "--base", "30000"]
        let started = try await Self.ha(
            common + ["--regions", "3", "--binary", try StarlingBinary.path()], timeout: .seconds(300))
        do {
            #expect(started.exitCode == 0, "\(started.transcript)")
            guard started.exitCode == 0 else { throw E2EError("ops/ha did not start") }
            for kill in ["postgres", "patroni", "etcd"] {
                let drill = try await Self.ha(common + ["--check", "--kill", kill, "--seconds", "12"],
                                              timeout: .seconds(300))
                print("patroni drill (\(kill)):\n\(drill.stdout)")
                #expect(drill.exitCode == 0, "\(drill.transcript)")
                #expect(drill.stdout.contains(", lost 0;"), "\(drill.transcript)")
                #expect(drill.stdout.contains(" 0 missing, 0 doubled"), "\(drill.transcript)")
            }
        } catch {
            _ = try? await Self.ha(common + ["--stop"], timeout: .seconds(120))
            throw error
        }
        let stopped = try await Self.ha(common + ["--stop"], timeout: .seconds(120))
        #expect(stopped.exitCode == 0, "\(stopped.transcript)")
        #expect(!FileManager.default.fileExists(atPath: directory))
    }
}
