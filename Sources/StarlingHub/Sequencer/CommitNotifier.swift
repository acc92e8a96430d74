import Synchronization

/// The committed head seq and the long-poll waiters that want to hear when it moves past their cursor.
///
/// The sequencer calls ``publish(head:)`` after each commit; pulls call ``wait(after:timeout:)``. Waiters are
/// continuations in a mutex-guarded table: no polling. Any thread may call either method.
final class CommitNotifier: Sendable {
    private struct Waiter {
        var after: Int64
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var head: Int64 = 0
        var nextID: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        /// Waiters cancelled before they registered.
        var cancelled: Set<UInt64> = []
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
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForCommit(after: after) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
        return head
    }

    private func waitForCommit(after: Int64) async {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.head > after || state.cancelled.remove(id) != nil { return true }
                    state.waiters[id] = Waiter(after: after, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
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
}
