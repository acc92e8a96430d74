import CShims
import Glibc
import Synchronization

/// One epoll event loop, run by one dedicated thread.
///
/// ```
///  other threads ──execute(closure)──▶ inbox (lock) ───eventfd──▶ ┐
///  sockets ───────────── readiness ──────────────▶ epoll_wait ────┼─▶ handlers, timers, inbox (loop thread)
///  timers (heap) ─── nearest deadline = epoll timeout ────────────┘
/// ```
///
/// Thread safety: `execute`, `stop` and `isInEventLoop` may be called from any thread (the inbox is guarded by
/// a `PthreadMutex`, so ThreadSanitizer sees what a closure's sender wrote before it ran; the wake-up flag is
/// atomic). Everything else — registrations, timers, handlers — is confined to
/// the loop thread, and every entry point asserts it runs there.
public final class EventLoop: @unchecked Sendable {
    private let epollFD: Int32
    /// eventfd written by `execute` from other threads; registration id 0.
    private let wakeFD: Int32
    /// Work from other threads; `isFinished` turns true (under the same lock) when `run()` has returned, after
    /// which new work is dropped instead of queued for a loop that will never run it.
    private let inbox = PthreadMutex<(work: [UnsafeTransfer<() -> Void>], isFinished: Bool)>(([], false))
    private let wakePending = Atomic<Bool>(false)
    private let stopRequested = Atomic<Bool>(false)
    private let loopThread = Mutex<pthread_t?>(nil)

    // Loop-confined state.
    private var handlers: [UInt64: any EventLoopHandler] = [:]
    private var nextRegistrationID: UInt64 = 1
    private var timerHeap = TimerHeap()
    private var timerBodies: [UInt64: () -> Void] = [:]
    private var nextTimerID: UInt64 = 1
    private var events: UnsafeMutableBufferPointer<epoll_event>

    /// A name for logs and thread names.
    public let name: String

    /// Creates the epoll and eventfd descriptors; `run()` must then be called on the loop's own thread.
    public init(name: String, maxEventsPerWait: Int = 256) throws(IOError) {
        self.name = name
        guard let epfd = try Syscall.call("epoll_create1", { epoll_create1(Int32(EPOLL_CLOEXEC)) }) else {
            throw IOError(.syscallFailed, "epoll_create1 would block")
        }
        guard let efd = try Syscall.call("eventfd", { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }) else {
            Syscall.close(epfd)
            throw IOError(.syscallFailed, "eventfd would block")
        }
        epollFD = epfd
        wakeFD = efd
        events = .allocate(capacity: maxEventsPerWait)
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = 0
        _ = try Syscall.call("epoll_ctl") { epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &event) }
    }

    deinit {
        events.deallocate()
        Syscall.close(wakeFD)
        Syscall.close(epollFD)
    }

    /// True when called on this loop's thread while it runs.
    public var isInEventLoop: Bool {
        let me = pthread_self()
        return loopThread.withLock { thread in thread.map { pthread_equal($0, me) != 0 } ?? false }
    }

    @inline(__always)
    public func assertInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(isInEventLoop, "not on event loop \(name)", file: file, line: line)
    }

    // MARK: - Cross-thread API

    /// Runs `work` on the loop thread, soon. Safe from any thread; `work` is handed over (`sending`).
    public func execute(_ work: sending @escaping () -> Void) {
        let transfer = UnsafeTransfer(work)
        let accepted = inbox.withLock { inbox in
            guard !inbox.isFinished else { return false }
            inbox.work.append(transfer)
            return true
        }
        guard accepted else { return }  // `transfer` is released here, outside the lock
        if !wakePending.exchange(true, ordering: .acquiringAndReleasing) {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)  // Cannot fail but for a full counter, which still wakes the loop.
        }
    }

    /// Asks the loop to return from `run()` after the current iteration. Safe from any thread.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        execute {}
    }

    // MARK: - Loop-thread API

    /// Registers `fd` for `interest`; `handler` is retained until `deregister`.
    public func register(fd: Int32, interest: IOEvents, handler: any EventLoopHandler) throws(IOError) -> Registration {
        assertInEventLoop()
        let id = nextRegistrationID
        nextRegistrationID += 1
        var event = epoll_event()
        event.events = interest.rawValue
        event.data.u64 = id
        _ = try Syscall.call("epoll_ctl") { epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) }
        handlers[id] = handler
        return Registration(id: id, fd: fd)
    }

    /// Changes what the registration is interested in.
    public func modify(_ registration: Registration, interest: IOEvents) throws(IOError) {
        assertInEventLoop()
        var event = epoll_event()
        event.events = interest.rawValue
        event.data.u64 = registration.id
        _ = try Syscall.call("epoll_ctl") { epoll_ctl(epollFD, EPOLL_CTL_MOD, registration.fd, &event) }
    }

    /// Removes the registration; its handler gets no further events. Does not close the descriptor.
    public func deregister(_ registration: Registration) {
        assertInEventLoop()
        guard handlers.removeValue(forKey: registration.id) != nil else { return }
        var event = epoll_event()
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, registration.fd, &event)
    }

    /// Runs `body` on the loop after `delay`, unless cancelled first.
    @discardableResult
    public func scheduleTimer(after delay: Duration, _ body: @escaping () -> Void) -> TimerID {
        assertInEventLoop()
        let id = nextTimerID
        nextTimerID += 1
        timerHeap.insert(.init(deadline: Syscall.monotonicNanos() &+ delay.nanoseconds, id: id))
        timerBodies[id] = body
        return TimerID(rawValue: id)
    }

    /// Cancels a timer; a no-op when it already ran.
    public func cancelTimer(_ timer: TimerID) {
        assertInEventLoop()
        timerBodies[timer.rawValue] = nil
    }

    /// Runs the loop on the calling thread until `stop()`. Handlers, timers and executed work run here.
    public func run() {
        loopThread.withLock { $0 = pthread_self() }
        defer { loopThread.withLock { $0 = nil } }
        while !stopRequested.load(ordering: .acquiring) {
            let timeout = nextTimeoutMilliseconds()
            let count = epoll_wait(epollFD, events.baseAddress, Int32(events.count), timeout)
            if count < 0 {
                let err = starling_errno()
                precondition(err == EINTR, "epoll_wait failed: \(Syscall.describe(errno: err))")
                continue
            }
            for index in 0..<Int(count) {
                let event = events[index]
                if event.data.u64 == 0 {
                    drainWakeFD()
                } else if let handler = handlers[event.data.u64] {
                    handler.handleEvents(IOEvents(rawValue: event.events))
                }
            }
            runExpiredTimers()
            runInbox()
        }
        runInbox()
        // The loop is done: drop every handler, timer and queued closure so the objects they capture (which
        // often capture this loop in turn) are freed instead of kept alive by a cycle through a dead loop.
        handlers.removeAll()
        timerBodies.removeAll()
        timerHeap = TimerHeap()
        let dropped = inbox.withLock { inbox in
            inbox.isFinished = true
            let work = inbox.work
            inbox.work.removeAll()
            return work
        }
        _ = dropped  // released after the lock is let go: their deinits may call execute
    }

    private func nextTimeoutMilliseconds() -> Int32 {
        if wakePending.load(ordering: .acquiring) { return 0 }
        while let first = timerHeap.first, timerBodies[first.id] == nil { _ = timerHeap.popFirst() }
        guard let first = timerHeap.first else { return -1 }
        let now = Syscall.monotonicNanos()
        if first.deadline <= now { return 0 }
        let millis = (first.deadline - now + 999_999) / 1_000_000
        return Int32(min(millis, 60_000))
    }

    private func runExpiredTimers() {
        let now = Syscall.monotonicNanos()
        while let first = timerHeap.first, first.deadline <= now {
            _ = timerHeap.popFirst()
            if let body = timerBodies.removeValue(forKey: first.id) { body() }
        }
    }

    private func drainWakeFD() {
        var value: UInt64 = 0
        _ = read(wakeFD, &value, 8)
    }

    private func runInbox() {
        wakePending.store(false, ordering: .releasing)
        let work = inbox.withLock { inbox -> [UnsafeTransfer<() -> Void>] in
            let taken = inbox.work
            inbox.work.removeAll(keepingCapacity: true)
            return taken
        }
        for item in work { item.value() }
    }
}

/// Carries a non-Sendable value across a thread boundary that the caller has made safe by other means
/// (here: a closure handed to exactly one loop and run only there).
package struct UnsafeTransfer<Value>: @unchecked Sendable {
    package let value: Value
    package init(_ value: Value) { self.value = value }
}
