import Foundation
import Glibc
import Synchronization

/// A loopback TCP proxy for fault-injection tests: it listens on 127.0.0.1 (port chosen by the kernel) and
/// forwards every connection to `upstreamPort`, while a test makes the network misbehave on purpose:
/// ``cutAll()`` resets every open connection, ``delay`` adds latency to every forwarded chunk, ``truncate``
/// closes a connection mid-stream after a number of bytes, ``refuse`` turns new connections away.
///
/// Plain blocking sockets and threads (not our event loop): the proxy must keep working exactly when the
/// code under test does not. One accept thread, one thread per proxied connection that polls both sockets
/// every 20 ms (so a cut or a stop is seen promptly). Each socket is owned and closed by its connection's
/// thread; the listener by the accept thread. ``stop()`` ends everything and returns when the threads have.
public final class FaultProxy: Sendable {
    /// What the proxy does to traffic right now; changed by the test at any time.
    public struct Faults: Sendable, Hashable, CustomStringConvertible {
        /// Added to every chunk forwarded in either direction.
        public var delay: Duration = .zero
        /// When set, each connection accepted from now on is closed after forwarding this many bytes in total.
        public var truncateAfterBytes: Int?
        /// When true, new connections are accepted and closed at once (the peer sees a reset or EOF).
        public var isRefusing = false

        public init(delay: Duration = .zero, truncateAfterBytes: Int? = nil, isRefusing: Bool = false) {
            self.delay = delay
            self.truncateAfterBytes = truncateAfterBytes
            self.isRefusing = isRefusing
        }

        public var description: String {
            "delay \(delay), truncate \(truncateAfterBytes.map(String.init) ?? "off"), refusing \(isRefusing)"
        }
    }

    /// The proxy failed to set up its listener.
    public struct SetupError: Error, CustomStringConvertible {
        public let call: String
        public let errno: Int32
        public var description: String { "FaultProxy: \(call) failed: \(String(cString: strerror(errno)))" }
    }

    /// Counters a test can assert on (the faults really happened).
    public struct Counters: Sendable, Hashable {
        public var accepted = 0
        public var refused = 0
        public var cut = 0
        public var truncated = 0
        public var bytesForwarded = 0
    }

    private struct State: Sendable {
        var faults = Faults()
        /// Bumped by `cutAll`: a connection started under an older generation closes.
        var generation = 0
        var isStopped = false
        var runningThreads = 0
        var counters = Counters()
    }

    /// The port the proxy listens on.
    public let port: Int
    private let upstreamPort: Int
    private let state = Mutex(State())

    /// Starts listening on 127.0.0.1:0 and forwarding to 127.0.0.1:`upstreamPort`.
    public init(upstreamPort: Int) throws {
        self.upstreamPort = upstreamPort
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw SetupError(call: "socket", errno: errno) }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 128) == 0 else {
            let code = errno
            Glibc.close(listener)
            throw SetupError(call: "bind/listen", errno: code)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        state.withLock { $0.runningThreads = 1 }
        Thread { [self] in acceptLoop(listener: listener) }.start()
    }

    /// The faults in force.
    public var faults: Faults {
        get { state.withLock { $0.faults } }
        set { state.withLock { $0.faults = newValue } }
    }

    public var counters: Counters { state.withLock { $0.counters } }

    /// Resets every connection open now (new ones are forwarded as usual).
    public func cutAll() {
        state.withLock { $0.generation += 1 }
    }

    /// Clears every fault.
    public func heal() {
        faults = Faults()
    }

    /// Closes the listener and every connection; returns when every proxy thread has exited.
    public func stop() async {
        state.withLock { $0.isStopped = true }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while state.withLock({ $0.runningThreads }) > 0 && clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))  // polling thread exit with a deadline
        }
    }

    deinit {
        state.withLock { $0.isStopped = true }
    }

    // MARK: - Threads

    private func acceptLoop(listener: Int32) {
        defer {
            Glibc.close(listener)
            state.withLock { $0.runningThreads -= 1 }
        }
        while !state.withLock({ $0.isStopped }) {
            guard Self.waitReadable([listener], timeoutMs: 20).first == true else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            // Close-on-exec, so a child started meanwhile (pg_ctl's postgres) cannot keep a cut connection open.
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            let (faults, generation) = state.withLock { state -> (Faults, Int) in
                if state.faults.isRefusing {
                    state.counters.refused += 1
                } else {
                    state.counters.accepted += 1
                    state.runningThreads += 1
                }
                return (state.faults, state.generation)
            }
            if faults.isRefusing {
                Self.reset(client)
                continue
            }
            Thread { [self] in pump(client: client, generation: generation, limit: faults.truncateAfterBytes) }.start()
        }
    }

    /// Connects upstream and copies bytes both ways until either side closes, a cut, a truncation or stop.
    private func pump(client: Int32, generation: Int, limit: Int?) {
        defer { state.withLock { $0.runningThreads -= 1 } }
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = Self.loopback(port: upstreamPort)
        let connected =
            upstream >= 0
            && withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            } == 0
        guard connected else {
            if upstream >= 0 { Glibc.close(upstream) }
            Self.reset(client)
            return
        }
        var forwarded = 0
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        loop: while true {
            let (stopped, current, delay) = state.withLock { ($0.isStopped, $0.generation, $0.faults.delay) }
            if stopped { break }
            if current != generation {
                state.withLock { $0.counters.cut += 1 }
                break
            }
            let ready = Self.waitReadable([client, upstream], timeoutMs: 20)
            for (index, isReady) in ready.enumerated() where isReady {
                let (from, to) = index == 0 ? (client, upstream) : (upstream, client)
                var count = read(from, &buffer, buffer.count)
                if count <= 0 { break loop }
                if let limit, forwarded + count >= limit {
                    count = limit - forwarded
                    _ = Self.writeAll(to, buffer, count: count)
                    state.withLock { $0.counters.truncated += 1 }
                    break loop
                }
                if delay > .zero { Thread.sleep(forTimeInterval: Self.seconds(delay)) }  // the injected latency
                guard Self.writeAll(to, buffer, count: count) else { break loop }
                forwarded += count
                state.withLock { $0.counters.bytesForwarded += count }
            }
        }
        Self.reset(client)
        Self.reset(upstream)
    }

    // MARK: - Helpers

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    /// Which of `fds` are readable (or closed) within `timeoutMs`.
    private static func waitReadable(_ fds: [Int32], timeoutMs: Int32) -> [Bool] {
        var polls = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let ready = poll(&polls, nfds_t(polls.count), timeoutMs)
        guard ready > 0 else { return fds.map { _ in false } }
        return polls.map { $0.revents != 0 }
    }

    private static func writeAll(_ fd: Int32, _ buffer: [UInt8], count: Int) -> Bool {
        var offset = 0
        while offset < count {
            let written = buffer.withUnsafeBytes { send(fd, $0.baseAddress! + offset, count - offset, Int32(MSG_NOSIGNAL)) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return false }
            offset += written
        }
        return true
    }

    /// Closes `fd` with SO_LINGER 0, so the peer sees a reset (an abrupt network failure), not a clean EOF.
    private static func reset(_ fd: Int32) {
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        Glibc.close(fd)
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
