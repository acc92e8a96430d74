import CShims
import Glibc

/// Starts dedicated OS threads (event loops, libpq workers, resolvers): never Swift's cooperative pool.
public enum ThreadSpawner {
    /// The body handed to the new thread. Retained by `spawn`, released by the thread when the body returns.
    private final class Start: Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// A running thread; `join()` waits for its body to return.
    public struct Handle: @unchecked Sendable {  // pthread_t is a plain integer id; joining is thread-safe.
        let thread: pthread_t
        public func join() { pthread_join(thread, nil) }
        /// Lets the thread free itself when its body returns; the handle must not be joined afterwards.
        public func detach() { pthread_detach(thread) }
    }

    /// Starts a thread running `body`. The thread's name is cut to 15 characters (a Linux limit). The caller
    /// joins or detaches the returned handle: a finished thread that is neither keeps its stack until exit.
    public static func spawn(name: String, _ body: @escaping @Sendable () -> Void) throws(IOError) -> Handle {
        let start = Unmanaged.passRetained(Start(name: name, body: body))
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, threadEntry, start.toOpaque())
        if rc != 0 {
            start.release()
            throw IOError(.threadStartFailed, "could not start thread \(name)", syscall: "pthread_create", errno: rc)
        }
        return Handle(thread: thread)
    }

    /// The C entry point: takes over the retain made by `spawn`.
    private static let threadEntry: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { raw in
        guard let raw else { return nil }
        let start = Unmanaged<Start>.fromOpaque(raw).takeRetainedValue()
        start.name.prefix(15).withCString { starling_set_thread_name($0) }
        start.body()
        return nil
    }
}
