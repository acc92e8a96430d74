internal import CLibPQ
internal import Glibc

/// A pthread mutex and condition variable guarding a value: the job queue of `PostgresPool` and
/// `PostgresWorker`, where threads sleep until there is work.
///
/// `@unchecked Sendable`: `state` is only touched while `mutex` is held (inside `withLock` / `waitThenLock`).
/// The mutex and condition are heap-allocated so they never move, and are destroyed in `deinit`.
final class ConditionLock<State: Sendable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var state: State

    init(_ state: State) {
        self.state = state
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init")
        precondition(pthread_cond_init(condition, nil) == 0, "pthread_cond_init")
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with the lock held.
    func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }

    /// Sleeps until `isReady(state)` holds, then runs `body` with the lock still held.
    func waitThenLock<R>(until isReady: (State) -> Bool, _ body: (inout State) -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !isReady(state) { pthread_cond_wait(condition, mutex) }
        return body(&state)
    }

    /// Wakes one sleeper.
    func signal() { pthread_cond_signal(condition) }

    /// Wakes every sleeper.
    func broadcast() { pthread_cond_broadcast(condition) }
}

/// Starts a detached pthread named `name` (at most 15 bytes are kept) running `body`.
///
/// The body is boxed and passed as the thread argument: a C start routine cannot capture context.
func startDetachedThread(name: String, _ body: @escaping @Sendable () -> Void) {
    final class Box: Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
    let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(
        &thread, nil,
        { argument in
            guard let argument else { return nil }
            let box = Unmanaged<Box>.fromOpaque(argument).takeRetainedValue()
            _ = starling_pq_set_thread_name(String(decoding: box.name.utf8.prefix(15), as: UTF8.self))
            box.body()
            return nil
        }, box)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    pthread_detach(thread)
}
