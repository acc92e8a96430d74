@testable import StarlingHub
import Testing

/// The long-poll waiters (CommitNotifier.swift): woken by a commit past their cursor, or by the sweeper at their
/// deadline, a short wait registered after a long one included.
@Suite(.timeLimit(.minutes(1)))
struct CommitNotifierTests {
    @Test func aWaitEndsAtItsTimeoutOrAtACommitPastItsCursor() async throws {
        let notifier = CommitNotifier(head: 5)
        #expect(await notifier.wait(after: 4, timeout: .seconds(30)) == 5, "already past: no wait")

        var started = ContinuousClock.now
        #expect(await notifier.wait(after: 5, timeout: .milliseconds(100)) == 5)
        var waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(100) && waited < .seconds(10), "\(waited)")

        // A long wait first, then a short one: the short one still ends at its own deadline.
        let long = Task { await notifier.wait(after: 5, timeout: .seconds(30)) }
        try await waitUntilWaiting(notifier, count: 1)
        started = .now
        #expect(await notifier.wait(after: 5, timeout: .milliseconds(100)) == 5)
        waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(100) && waited < .seconds(10), "\(waited)")
        #expect(notifier.waiterCount == 1, "the long wait goes on")

        // A commit ends it long before its timeout; one not past a cursor does not.
        let higher = Task { await notifier.wait(after: 6, timeout: .seconds(30)) }
        try await waitUntilWaiting(notifier, count: 2)
        started = .now
        notifier.publish(head: 6)
        #expect(await long.value == 6)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(notifier.waiterCount == 1)
        notifier.publish(head: 7)
        #expect(await higher.value == 7)
        #expect(notifier.waiterCount == 0)
    }

    @Test func aCancelledWaitEndsAndLeavesNoWaiter() async throws {
        let notifier = CommitNotifier(head: 1)
        let waiting = Task { await notifier.wait(after: 1, timeout: .seconds(30)) }
        try await waitUntilWaiting(notifier, count: 1)
        waiting.cancel()
        #expect(await waiting.value == 1)
        #expect(notifier.waiterCount == 0)
        // The sweeper of the cancelled wait's deadline finds nothing to do; a new wait still times out.
        let started = ContinuousClock.now
        #expect(await notifier.wait(after: 1, timeout: .milliseconds(50)) == 1)
        #expect(ContinuousClock.now - started >= .milliseconds(50))
    }

    private func waitUntilWaiting(_ notifier: CommitNotifier, count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while notifier.waiterCount < count {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            await Task.yield()
        }
    }
}
