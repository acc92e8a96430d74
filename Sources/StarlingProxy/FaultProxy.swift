import Foundation
import Glibc
import Synchronization

/// A loopback TCP proxy that makes the network misbehave on purpose: it listens on 127.0.0.1 and forwards
/// every connection to 127.0.0.1:`upstreamPort`, while its owner changes the faults at any time: ``cutAll()``
/// resets every open connection, ``Faults/delay`` adds latency to every forwarded chunk (pipelined, see
/// ``DelayLine``: a latency, not a bandwidth limit), ``Faults/truncateAfterBytes`` closes a connection
/// mid-stream, ``Faults/isRefusing`` turns new connections away.
///
/// Used by the fault-injection tests (through StarlingTestSupport) and by `starling-netdelay`, the benchmarks'
/// WAN emulation (the kernel here has no netem). Never linked into `starling`.
///
/// Plain sockets and threads (not our event loop): the proxy must keep working exactly when the code under
/// test does not. One accept thread; one thread per proxied connection that polls both (non-blocking) sockets
/// at least every 20 ms (so a cut or a stop is seen promptly) and at each chunk's due time. Each connection's
/// sockets and delay lines are owned by its thread, which closes the sockets; the listener is owned and
/// closed by the accept thread. ``stop()`` ends everything and returns when the threads have.
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

    /// Starts listening on 127.0.0.1:`listenPort` (0: the kernel chooses; see ``port``) and forwarding to
    /// 127.0.0.1:`upstreamPort`, with `faults` in force from the first connection.
    public init(listenPort: Int = 0, upstreamPort: Int, faults: Faults = Faults()) throws {
        self.upstreamPort = upstreamPort
        state.withLock { $0.faults = faults }
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw SetupError(call: "socket", errno: errno) }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: listenPort)
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

    /// Connects upstream and copies bytes both ways until either side closes (once what it sent is out), a cut,
    /// a truncation or stop. Each direction is a ``DelayLine``: a chunk is written `delay` after it was read
    /// (the delay in force when it arrived), and later chunks do not wait behind an earlier one's delay. Both
    /// sockets are non-blocking after connect; one `poll` waits for readable sources, writable destinations
    /// with a due chunk, and the next due time (at most 20 ms, so a cut or a stop is seen promptly).
    private func pump(client: Int32, generation: Int, limit: Int?) {
        defer { state.withLock { $0.runningThreads -= 1 } }
        guard let upstream = Self.connectUpstream(port: upstreamPort) else {
            Self.reset(client)
            return
        }
        // A side that closed ends the connection with a plain close (what was written still arrives); a cut, a
        // truncation, a stop or a failed write with a reset.
        var isClean = false
        defer {
            for fd in [client, upstream] {
                if isClean { Glibc.close(fd) } else { Self.reset(fd) }
            }
        }
        var one: Int32 = 1
        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        for fd in [client, upstream] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        let clock = ContinuousClock()
        // Index 0: client → upstream; 1: upstream → client.
        let ends = [(from: client, to: upstream), (from: upstream, to: client)]
        var lines = [DelayLine(), DelayLine()]
        var isSourceOpen = [true, true]
        var forwarded = 0
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let (stopped, current, delay) = state.withLock { ($0.isStopped, $0.generation, $0.faults.delay) }
            if stopped { return }
            if current != generation {
                state.withLock { $0.counters.cut += 1 }
                return
            }
            // A side that closed ends the connection once everything it and its peer sent is out.
            if isSourceOpen.contains(false) && lines.allSatisfy(\.isEmpty) {
                isClean = true
                return
            }
            var now = clock.now
            let set = Self.pollSet(ends: ends, lines: lines, isSourceOpen: isSourceOpen, now: now)
            var polls = set.polls
            _ = poll(&polls, nfds_t(polls.count), Self.milliseconds(roundingUp: set.wait))
            now = clock.now
            for (poll, role) in zip(polls, set.roles) where poll.revents != 0 {
                let (from, to) = ends[role.line]
                if role.isWrite {
                    guard let result = writeDue(&lines[role.line], to: to, now: now, forwarded: &forwarded, limit: limit)
                    else { return }
                    if result == .truncated {
                        state.withLock { $0.counters.truncated += 1 }
                        return
                    }
                    continue
                }
                let count = read(from, &buffer, buffer.count)
                if count < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                if count <= 0 {
                    isSourceOpen[role.line] = false
                    continue
                }
                lines[role.line].arrived(Array(buffer[0..<count]), at: now, delay: delay)
            }
        }
    }

    /// What one `poll` waits for: each open source with room in its line (readable), each destination whose
    /// line has a due chunk (writable), and at most until the next chunk falls due (20 ms at most).
    private static func pollSet(
        ends: [(from: Int32, to: Int32)], lines: [DelayLine], isSourceOpen: [Bool], now: ContinuousClock.Instant
    ) -> (polls: [pollfd], roles: [(line: Int, isWrite: Bool)], wait: Duration) {
        var polls: [pollfd] = []
        var roles: [(line: Int, isWrite: Bool)] = []
        var wait = Duration.milliseconds(20)
        for index in ends.indices {
            if isSourceOpen[index] && lines[index].acceptsMore {
                polls.append(pollfd(fd: ends[index].from, events: Int16(POLLIN), revents: 0))
                roles.append((index, false))
            }
            guard let due = lines[index].nextDue else { continue }
            if due <= now {
                polls.append(pollfd(fd: ends[index].to, events: Int16(POLLOUT), revents: 0))
                roles.append((index, true))
            } else {
                wait = min(wait, due - now)
            }
        }
        return (polls, roles, wait)
    }

    private enum WriteResult { case written, truncated }

    /// Writes the due chunks of `line` to `fd` until none is due or the socket is full; nil when the write
    /// failed (the peer is gone). `forwarded` counts the bytes out; at `limit` the rest is dropped (`truncated`).
    private func writeDue(
        _ line: inout DelayLine, to fd: Int32, now: ContinuousClock.Instant, forwarded: inout Int, limit: Int?
    ) -> WriteResult? {
        while let bytes = line.dueBytes(at: now) {
            let allowed = limit.map { min(bytes.count, $0 - forwarded) } ?? bytes.count
            let written = allowed <= 0 ? 0 : bytes.withUnsafeBytes { raw in
                // `raw` is the slice's own storage for this call only.
                send(fd, raw.baseAddress, allowed, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EAGAIN || errno == EINTR { return .written }
                return nil
            }
            line.wrote(written)
            forwarded += written
            state.withLock { $0.counters.bytesForwarded += written }
            if let limit, forwarded >= limit { return .truncated }
            if written < bytes.count { return .written }
        }
        return .written
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

    /// A blocking connect to 127.0.0.1:`port`; nil when it fails.
    private static func connectUpstream(port: Int) -> Int32? {
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard upstream >= 0 else { return nil }
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            Glibc.close(upstream)
            return nil
        }
        // The proxy adds latency on purpose; Nagle's algorithm must not add more (nor hold back small frames).
        var one: Int32 = 1
        setsockopt(upstream, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return upstream
    }

    /// `duration` in whole milliseconds, rounded up (a poll never wakes before a due time), at least 0.
    private static func milliseconds(roundingUp duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 && (seconds > 0 || attoseconds > 0) else { return 0 }
        let millis = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: millis)
    }

    /// Closes `fd` with SO_LINGER 0, so the peer sees a reset (an abrupt network failure), not a clean EOF.
    private static func reset(_ fd: Int32) {
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        Glibc.close(fd)
    }
}
