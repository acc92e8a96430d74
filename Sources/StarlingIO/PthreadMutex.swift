import Glibc

/// A value guarded by a pthread mutex, for hand-offs between threads that ThreadSanitizer must see.
///
/// `Synchronization.Mutex` locks with atomics and futex calls inside the standard library, which is not built
/// with ThreadSanitizer: the lock works, but TSan sees no order between what one thread wrote before unlocking
/// and what another reads after locking (ops/tsan.supp). Inside a `withLock` body that is suppressed; what the
/// lock hands over (the event loop's inbox carries closures whose captures were written on another thread) is
/// not. TSan intercepts `pthread_mutex_lock`/`unlock`, so this lock orders everything around it in its eyes.
///
/// `@unchecked Sendable`: `value` is only touched while `mutex` is held. The mutex is heap-allocated so it never
/// moves; this object owns it and frees it in `deinit`.
public final class PthreadMutex<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the lock held.
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
