import Dispatch
import Glibc
@testable import StarlingIO
import Synchronization
import Testing

@Suite("event loop, timers, sockets", .timeLimit(.minutes(3)))
struct EventLoopTests {
    @Test("execute runs closures on the loop thread, in order, from many threads")
    func executeOrdering() async throws {
        let group = try EventLoopGroup(name: "t", count: 1)
        let loop = group.loops[0]
        let seen = Locked<[Int]>([])
        let onLoop = Locked<Bool>(true)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            for index in 0..<1000 {
                loop.execute {
                    if !loop.isInEventLoop { onLoop.withLock { $0 = false } }
                    let count = seen.withLock { $0.append(index); return $0.count }
                    if count == 1000 { done.resume() }
                }
            }
        }
        #expect(seen.withLock { $0 } == Array(0..<1000))
        #expect(onLoop.withLock { $0 })
        #expect(!loop.isInEventLoop)
        group.shutdown()
    }

    /// What a thread wrote before `execute` is what the closure reads on the loop, and ThreadSanitizer sees the
    /// order (ops/test runs this suite under it). With the inbox behind `Synchronization.Mutex`, which TSan does not
    /// see as a lock, closures the loop took in the same round as a later wake-up raced in its eyes with their
    /// sender's writes (CI: `HTTP2Client.shutdown`'s semaphore, created on one thread and signalled on the loop).
    @Test("work handed to the loop sees what its sender wrote, in ThreadSanitizer's eyes too")
    func handOffIsOrdered() async throws {
        final class Note {  // Not Sendable: handed over with the closure (`sending`).
            var text = ""
        }
        let group = try EventLoopGroup(name: "t", count: 1)
        let loop = group.loops[0]
        let senders = 4, perSender = 3000
        let mismatches = Locked<Int>(0)
        let received = Locked<Int>(0)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                DispatchQueue.concurrentPerform(iterations: senders) { sender in
                    for index in 0..<perSender {
                        let note = Note()
                        note.text = "\(sender)-\(index)"
                        let expected = note.text
                        loop.execute {
                            if note.text != expected { mismatches.withLock { $0 += 1 } }
                            if received.withLock({ $0 += 1; return $0 }) == senders * perSender { done.resume() }
                        }
                    }
                }
            }
        }
        #expect(mismatches.withLock { $0 } == 0)
        group.shutdown()
    }

    @Test("timers fire in deadline order and cancelled timers never fire")
    func timers() async throws {
        let group = try EventLoopGroup(name: "t", count: 1)
        let loop = group.loops[0]
        let fired = Locked<[String]>([])
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            loop.execute {
                loop.scheduleTimer(after: .milliseconds(30)) { fired.withLock { $0.append("30") } }
                let cancelled = loop.scheduleTimer(after: .milliseconds(10)) { fired.withLock { $0.append("cancelled") } }
                loop.scheduleTimer(after: .milliseconds(5)) { fired.withLock { $0.append("5") } }
                loop.scheduleTimer(after: .milliseconds(5)) { fired.withLock { $0.append("5b") } }
                loop.cancelTimer(cancelled)
                loop.scheduleTimer(after: .milliseconds(50)) { done.resume() }
            }
        }
        #expect(fired.withLock { $0 } == ["5", "5b", "30"])
        group.shutdown()
    }

    @Test("the timer heap pops in order for random input")
    func heap() {
        var heap = TimerHeap()
        var generator = SystemRandomNumberGenerator()
        var deadlines: [UInt64] = []
        for id in 0..<2000 {
            let deadline = UInt64.random(in: 0..<500, using: &generator)
            deadlines.append(deadline)
            heap.insert(.init(deadline: deadline, id: UInt64(id)))
        }
        var popped: [UInt64] = []
        while let entry = heap.popFirst() { popped.append(entry.deadline) }
        #expect(popped == deadlines.sorted())
    }

    @Test("a registered socketpair end reports readability and reads the bytes; EOF is a value")
    func socketpairReadiness() async throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
        let group = try EventLoopGroup(name: "t", count: 1)
        let loop = group.loops[0]
        let received = Locked<[UInt8]>([])
        let reader = fds[0]
        let writer = fds[1]
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            loop.execute {
                let handler = ReadAll(fd: reader, loop: loop) { bytes, isEOF in
                    received.withLock { $0.append(contentsOf: bytes) }
                    if isEOF { done.resume() }
                }
                handler.registration = try? loop.register(fd: reader, interest: .readable, handler: handler)
            }
            var message = Array("ready".utf8)
            _ = write(writer, &message, message.count)
            Syscall.close(writer)
        }
        #expect(received.withLock { $0 } == Array("ready".utf8))
        group.shutdown()
        Syscall.close(reader)
    }

    @Test("addresses parse and print; loopback is recognised; bad ones are refused", arguments: [
        ("127.0.0.1:8443", "127.0.0.1:8443", true),
        ("10.1.2.3:1", "10.1.2.3:1", false),
        ("[::1]:80", "[::1]:80", true),
        ("[2001:db8::1]:443", "[2001:db8::1]:443", false),
        ("localhost:80", "error", false),
        ("127.0.0.1", "error", false),
        ("127.0.0.1:70000", "error", false),
        ("[::1:80", "error", false),
    ])
    func addresses(text: String, printed: String, loopback: Bool) {
        do {
            let address = try SocketAddress(parsing: text)
            #expect(address.description == printed)
            #expect(address.isLoopback == loopback)
        } catch {
            #expect(printed == "error")
        }
    }

    @Test("a listener on port 0 gets a real port; connect + accept work non-blocking")
    func listenConnectAccept() throws {
        let listener = try Socket.listen(on: try SocketAddress(parsing: "127.0.0.1:0"), reusePort: false)
        defer { Syscall.close(listener) }
        let bound = try Socket.localAddress(listener)
        #expect(bound.port != 0)
        let (client, _) = try Socket.connect(to: bound)
        defer { Syscall.close(client) }
        var accepted: (fd: Int32, peer: SocketAddress?)?
        for _ in 0..<1000 where accepted == nil {
            accepted = try Socket.accept(listener)
            if accepted == nil { usleep(1000) }  // the kernel completes the loopback handshake asynchronously
        }
        let server = try #require(accepted)
        defer { Syscall.close(server.fd) }
        #expect(server.peer?.isLoopback == true)
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(try buffer.withUnsafeMutableBytes { try Socket.read(server.fd, into: $0) } == .wouldBlock)
    }
}

/// Reads everything from a descriptor until EOF, reporting to `onBytes`.
private final class ReadAll: EventLoopHandler {
    let fd: Int32
    let loop: EventLoop
    let onBytes: ([UInt8], Bool) -> Void
    var registration: Registration?

    init(fd: Int32, loop: EventLoop, onBytes: @escaping ([UInt8], Bool) -> Void) {
        self.fd = fd
        self.loop = loop
        self.onBytes = onBytes
    }

    func handleEvents(_ events: IOEvents) {
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let result = (try? buffer.withUnsafeMutableBytes { try Socket.read(fd, into: $0) }) ?? .endOfFile
            switch result {
            case .bytes(let count): onBytes(Array(buffer[0..<count]), false)
            case .wouldBlock: return
            case .endOfFile:
                if let registration { loop.deregister(registration) }
                registration = nil
                onBytes([], true)
                return
            }
        }
    }
}

/// A Sendable box around a Mutex, capturable by escaping closures.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}
