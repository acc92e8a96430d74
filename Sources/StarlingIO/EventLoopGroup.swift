/// A fixed set of event loops, each on its own thread (one per core by default).
///
/// `shutdown()` stops the loops and joins their threads; it must not be called from one of them.
public final class EventLoopGroup: Sendable {
    public let loops: [EventLoop]
    private let threads: [ThreadSpawner.Handle]

    public init(name: String, count: Int = EventLoopGroup.defaultLoopCount) throws(IOError) {
        precondition(count > 0, "an event loop group needs at least one loop")
        var loops: [EventLoop] = []
        var threads: [ThreadSpawner.Handle] = []
        for index in 0..<count {
            let loop = try EventLoop(name: "\(name)-\(index)")
            do {
                threads.append(try ThreadSpawner.spawn(name: loop.name) { loop.run() })
            } catch {
                for started in loops { started.stop() }
                for thread in threads { thread.join() }
                throw error
            }
            loops.append(loop)
        }
        self.loops = loops
        self.threads = threads
    }

    /// The number of online CPUs.
    public static var defaultLoopCount: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Stops every loop and waits for its thread.
    public func shutdown() {
        for loop in loops {
            precondition(!loop.isInEventLoop, "EventLoopGroup.shutdown from one of its own loops")
            loop.stop()
        }
        for thread in threads { thread.join() }
    }
}

import Glibc
