import CShims
import Glibc

/// Turns SIGTERM/SIGINT (or other signals) into a callback on an event loop.
///
/// A process-wide signal handler (C, async-signal-safe) writes the signal number into a non-blocking pipe
/// whose read end is registered with the loop. This works whichever thread the kernel delivers the signal
/// to — a signalfd would need the signals blocked in every thread, including ones the Swift runtime started
/// before us. One watcher per process. Confined to its loop after `init`.
public final class SignalWatcher: EventLoopHandler {
    private let readFD: Int32
    private let writeFD: Int32
    private let loop: EventLoop
    private let onSignal: (Int32) -> Void
    private var registration: Registration?

    /// Ignores SIGPIPE process-wide (writes to closed sockets return EPIPE instead).
    public static func ignoreSIGPIPE() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// Must be called on `loop`.
    public init(signals: [Int32], loop: EventLoop, onSignal: @escaping (Int32) -> Void) throws(IOError) {
        var fds: [Int32] = [-1, -1]
        _ = try Syscall.call("pipe") { pipe(&fds) }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        readFD = fds[0]
        writeFD = fds[1]
        self.loop = loop
        self.onSignal = onSignal
        for signal in signals {
            _ = try Syscall.call("sigaction") { starling_route_signal_to_fd(signal, fds[1]) }
        }
        registration = try loop.register(fd: readFD, interest: .readable, handler: self)
    }

    public func handleEvents(_ events: IOEvents) {
        var byte: UInt8 = 0
        while Glibc.read(readFD, &byte, 1) == 1 {
            onSignal(Int32(byte))
        }
    }

    /// Stops watching (signals go back to their default action) and closes the pipe; on the loop.
    public func close(signals: [Int32]) {
        for sig in signals { signal(sig, SIG_DFL) }
        if let registration { loop.deregister(registration) }
        registration = nil
        Syscall.close(readFD)
        Syscall.close(writeFD)
    }
}
