import Synchronization

/// The committed head seq and the long-poll waiters that want to hear when it moves past their cursor.
///
/// The sequencer calls ``publish(head:)`` after each commit; pulls call ``wait(after:timeout:)``. Waiters are
/// continuations in a mutex-guarded table: no polling. Any thread may call either method.
///
/// Timeouts: one sweeper task sleeps until the earliest deadline among the waiters and resumes those past theirs. A
/// wait with a timer of its own (a task group of the wait and a `Task.sleep`, both cancelled at the first to end)
/// cost two child tasks and a dispatch timer armed and cancelled per pull: about a tenth of the hub's CPU and five of
/// its context switches per update in W2 at R=8 (2026-12-07), where every pull ends with a commit. Pulls mostly wait
/// the same `wait_ms`, so a new waiter's deadline is seldom before the sweeper's: then a new sweeper replaces it.
final class CommitNotifier: Sendable {
    private struct Waiter {
        var after: Int64
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var head: Int64 = 0
        var nextID: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        /// Waiters cancelled before they registered.
        var cancelled: Set<UInt64> = []
        /// When the sweeper wakes next (nil: none runs), which one runs and its task.
        var sweepAt: ContinuousClock.Instant?
        var sweeperID: UInt64 = 0
        var sweeper: Task<Void, Never>?
    }

    private let state = Mutex(State())

    init(head: Int64 = 0) {
        state.withLock { $0.head = head }
    }

    /// The newest committed seq.
    var head: Int64 { state.withLock { $0.head } }

    /// Number of pulls waiting (for tests and metrics).
    var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// Records a new head and wakes every waiter whose cursor is below it.
    func publish(head: Int64) {
        let woken: [CheckedContinuation<Void, Never>] = state.withLock { state in
            guard head > state.head else { return [] }
            state.head = head
            var ready: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in state.waiters where waiter.after < head {
                ready.append(waiter.continuation)
                state.waiters[id] = nil
            }
            return ready
        }
        for continuation in woken { continuation.resume() }
    }

    /// Returns when the head passes `after` or `timeout` elapses (or the task is cancelled); returns the head.
    func wait(after: Int64, timeout: Duration) async -> Int64 {
        if head > after || timeout <= .zero { return head }
        await waitForCommit(after: after, deadline: .now + timeout)
        return head
    }

    private func waitForCommit(after: Int64, deadline: ContinuousClock.Instant) async {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let (resumeNow, sweeper) = state.withLock { state -> (Bool, UInt64?) in
                    if state.head > after || state.cancelled.remove(id) != nil || deadline <= .now { return (true, nil) }
                    state.waiters[id] = Waiter(after: after, deadline: deadline, continuation: continuation)
                    if let at = state.sweepAt, at <= deadline { return (false, nil) }
                    // No sweeper runs, or it wakes after this deadline: a new one replaces it.
                    state.sweepAt = deadline
                    state.sweeperID += 1
                    return (false, state.sweeperID)
                }
                if resumeNow { continuation.resume() }
                if let sweeper { startSweeper(sweeper) }
            }
        } onCancel: {
            let continuation = state.withLock { state in
                if let waiter = state.waiters.removeValue(forKey: id) { return Optional(waiter.continuation) }
                state.cancelled.insert(id)
                return nil
            }
            continuation?.resume()
        }
        state.withLock { _ = $0.cancelled.remove(id) }
    }

    /// Starts sweeper `id`, cancelling the one it replaces.
    private func startSweeper(_ id: UInt64) {
        let task = Task { [self] in await sweep(as: id) }
        let (replaced, isCurrent) = state.withLock { state -> (Task<Void, Never>?, Bool) in
            guard state.sweeperID == id else { return (nil, false) }
            defer { state.sweeper = task }
            return (state.sweeper, true)
        }
        replaced?.cancel()
        // Replaced before it was kept: the newer sweeper's start found nothing of it to cancel.
        if !isCurrent { task.cancel() }
    }

    /// Sleeps until the earliest deadline and resumes the waiters past theirs, while it is the current sweeper and
    /// waiters remain.
    private func sweep(as id: UInt64) async {
        while true {
            guard let at = state.withLock({ $0.sweeperID == id ? $0.sweepAt : nil }) else { return }
            try? await Task.sleep(until: at, clock: .continuous)
            if Task.isCancelled { return }
            let now = ContinuousClock.now
            let (expired, isDone) = state.withLock { state -> ([CheckedContinuation<Void, Never>], Bool) in
                guard state.sweeperID == id else { return ([], true) }
                var expired: [CheckedContinuation<Void, Never>] = []
                var next: ContinuousClock.Instant?
                for (waiterID, waiter) in state.waiters {
                    if waiter.deadline <= now {
                        expired.append(waiter.continuation)
                        state.waiters[waiterID] = nil
                    } else {
                        next = min(next ?? waiter.deadline, waiter.deadline)
                    }
                }
                state.sweepAt = next
                if next == nil { state.sweeper = nil }
                return (expired, next == nil)
            }
            for continuation in expired { continuation.resume() }
            if isDone { return }
        }
    }
}
