import CShims
import Glibc

/// Turns SIGTERM/SIGINT (or other signals) into a callback on an event loop, through a signalfd.
///
/// The signals are blocked in the calling thread before any other thread starts, so every thread inherits the
/// mask and only the signalfd sees them. Confined to its loop after `start`.
public final class SignalWatcher: EventLoopHandler {
    private let fd: Int32
    private let loop: EventLoop
    private let onSignal: (Int32) -> Void
    private var registration: Registration?

    /// Blocks `signals` for this thread (and threads it starts later). Call early in `main`.
    public static func blockSignals(_ signals: [Int32]) {
        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in signals { sigaddset(&mask, signal) }
        pthread_sigmask(SIG_BLOCK, &mask, nil)
    }

    /// Ignores SIGPIPE process-wide (writes to closed sockets return EPIPE instead).
    public static func ignoreSIGPIPE() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// Must be called on `loop`. The signals must already be blocked.
    public init(signals: [Int32], loop: EventLoop, onSignal: @escaping (Int32) -> Void) throws(IOError) {
        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in signals { sigaddset(&mask, signal) }
        guard let fd = try Syscall.call("signalfd", { signalfd(-1, &mask, Int32(SFD_NONBLOCK | SFD_CLOEXEC)) }) else {
            throw IOError(.syscallFailed, "signalfd would block")
        }
        self.fd = fd
        self.loop = loop
        self.onSignal = onSignal
        registration = try loop.register(fd: fd, interest: .readable, handler: self)
    }

    public func handleEvents(_ events: IOEvents) {
        var info = signalfd_siginfo()
        while Glibc.read(fd, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
            onSignal(Int32(info.ssi_signo))
        }
    }

    /// Stops watching and closes the signalfd; on the loop.
    public func close() {
        if let registration { loop.deregister(registration) }
        registration = nil
        Syscall.close(fd)
    }
}
