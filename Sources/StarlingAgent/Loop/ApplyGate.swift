import Synchronization

/// Makes the apply of a pulled page and the handling of a push's verdicts exclusive of each other, from the
/// apply's pending-key snapshot to its own writes' registration, and from the verdicts' overwrite check to their
/// transaction's commit (WAL capture).
///
/// Why: an accepted change whose row an apply overwrote must be written again by its verdict, which learns of the
/// overwrite from the decoder once the apply's own write is registered (``CaptureQueue/wrote(_:at:)``). Both
/// run on the agent's one database connection, but the check runs before the verdict's job is queued: an apply
/// still running then (parallel parts on other connections, or a long page on the same one) overwrites the row
/// after the check, and the region keeps the older image while the hub's head is the change (seen in CI as two
/// rows of five diverging under racing upserts). Under the gate the verdict's check waits for the apply, or the
/// apply for the verdict's transaction, which then settles the key (the apply's snapshot sees it pending or its
/// version).
///
/// FIFO; a waiter is not cancelled (the sections it waits for end on their own).
final class ApplyGate: Sendable {
    private let state = Mutex<(held: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    /// Runs `body` holding the gate.
    func run<T>(_ body: () async throws(AgentError) -> T) async throws(AgentError) -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let isFree = state.withLock { state in
                if !state.held {
                    state.held = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if isFree { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiters.isEmpty else {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
