import Synchronization

/// A level-triggered wake-up for the agent's push task: ``signal()`` from any thread (the LISTEN thread on a
/// local write or a quiet second, a resumed table, ``Agent/stop()``), ``wait()`` from the push task. Signals arriving
/// while nobody waits are remembered as one pending wake-up, so none is lost between checks. One waiter at a
/// time (the push task); thread-safe through one mutex.
final class WakeUp: Sendable {
    private struct State {
        var isPending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    /// Wakes the waiter, or leaves a pending wake-up for the next ``wait()``.
    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.isPending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at once when a wake-up is pending (consuming it), else when the next ``signal()`` arrives.
    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                if state.isPending {
                    state.isPending = false
                    return true
                }
                precondition(state.waiter == nil, "WakeUp has one waiter at a time")
                state.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Drops a pending wake-up (before starting work that will look at everything anyway).
    func clear() {
        state.withLock { $0.isPending = false }
    }
}
