import Foundation

/// Runs `body` on a thread of its own and returns what it returned (or throws what it threw).
///
/// For a test's blocking work that may wait on something outside it: a libpq call that waits for another
/// session (creating a logical slot waits for every transaction running in the cluster to end; a lock waits for
/// its holder) or a long statement. The cooperative pool has as many threads as the machine has cores (two
/// here): two tests blocking in it at once starve every other test of the run, and their time limits ran out
/// together when they got a thread back (seen in CI: a 100,000-row insert in one test and a slot creation
/// waiting for it in another froze the HTTP/2 suites for a minute).
public func offPool<T>(
    _ name: String = "test-blocking", _ body: @escaping @Sendable () throws -> sending T
) async throws -> sending T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let thread = Thread {
            do {
                continuation.resume(returning: try body())
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.name = name
        thread.start()
    }
}
