import CShims
import Foundation
import Glibc

/// Runs an external program (curl, h2load, python3, openssl) for a test and captures its output.
public enum ProcessRunner {
    /// The outcome of one run.
    public struct Result: Sendable {
        public var exitCode: Int32
        public var stdout: String
        public var stderr: String
        public var stdoutBytes: [UInt8]
        public var timedOut: Bool
        /// From the spawn to the return, on the runner's own thread (a caller's clock also counts the time its task
        /// waits for a thread of the cooperative pool, which other suites' blocking work can take for many seconds).
        public var elapsed: Duration = .zero

        /// Both streams, for failure messages.
        public var transcript: String { "exit \(exitCode)\(timedOut ? " (timed out)" : "")\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }
    }

    /// A missing tool is a failure, never a skip: ops/test installs every tool the suite needs.
    public struct ToolMissing: Error, CustomStringConvertible {
        public let tool: String
        public var description: String { "\(tool) is not installed; run the suite through ops/test, which installs it" }
    }

    /// Finds `tool` on PATH (or takes an absolute path).
    public static func locate(_ tool: String) throws -> String {
        if tool.hasPrefix("/") {
            guard FileManager.default.isExecutableFile(atPath: tool) else { throw ToolMissing(tool: tool) }
            return tool
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw ToolMissing(tool: tool)
    }

    /// The Python interpreter with httpx/h2 (ops/test sets STARLING_PYTHON to Debian's).
    public static var python: String {
        ProcessInfo.processInfo.environment["STARLING_PYTHON"] ?? "/usr/bin/python3"
    }

    /// Runs `tool` with `arguments`, feeding `stdin`, and waits at most `timeout`. Runs off the cooperative
    /// pool (a blocking wait on a dedicated thread).
    public static func run(_ tool: String, _ arguments: [String], stdin: [UInt8]? = nil,
                           environment: [String: String]? = nil, workingDirectory: String? = nil,
                           timeout: Duration = .seconds(120)) async throws -> Result {
        let executable = try locate(tool)
        return try await offPool("process-runner") {
            try runBlocking(executable, arguments, stdin: stdin, environment: environment,
                            workingDirectory: workingDirectory, timeout: timeout)
        }
    }

    /// `run` for synchronous callers (test fixtures made once per process): blocks the calling thread.
    public static func runNow(_ tool: String, _ arguments: [String], timeout: Duration = .seconds(120)) throws
        -> Result {
        try runBlocking(try locate(tool), arguments, stdin: nil, environment: nil, workingDirectory: nil,
                        timeout: timeout)
    }

    /// Spawns with posix_spawn in a process group of its own and reaps with waitpid. (Foundation's Process
    /// sees a child as running until every descendant that inherited its hidden descriptor has exited: `bash -c
    /// "server &"` or a `pg_ctl start` looked alive until the server ended, and a run waiting for it never returned.)
    /// The child inherits stdin, stdout and stderr only: a descriptor another thread opened without O_CLOEXEC (a
    /// Foundation `Pipe`) would otherwise stay open in it, and whoever waits for that pipe's EOF would wait for this
    /// child's end.
    private static func runBlocking(_ executable: String, _ arguments: [String], stdin: [UInt8]?,
                                    environment: [String: String]?, workingDirectory: String?,
                                    timeout: Duration) throws -> Result {
        // Pipes: [read, write]; the parent's ends are closed here (stdin's write end by its writer thread).
        let input = try makePipe(), output = try makePipe(), error = try makePipe()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }  // ours to free on every path
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, error[1], 2)
        starling_spawn_file_actions_addclosefrom(&actions, 3)
        if let workingDirectory { starling_spawn_file_actions_addchdir(&actions, workingDirectory) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let merged = ProcessInfo.processInfo.environment.merging(environment ?? [:]) { $1 }
        // strdup'd C strings, freed below on every path.
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let spawnedAt = ContinuousClock.now
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        for fd in [input[0], output[1], error[1]] { close(fd) }
        guard spawned == 0 else {
            for fd in [input[1], output[0], error[0]] { close(fd) }
            throw SpawnFailed(executable: executable, reason: String(cString: strerror(spawned)))
        }
        let collector = OutputCollector(out: output[0], err: error[0])
        let stdinWriter = input[1]
        Thread {  // owns the stdin write end; a child that never reads gets EPIPE or is reaped, never blocks us
            if let stdin, !stdin.isEmpty {
                var offset = 0
                while offset < stdin.count {
                    let written = stdin[offset...].withUnsafeBytes { write(stdinWriter, $0.baseAddress, $0.count) }
                    if written <= 0 { if errno == EINTR { continue } else { break } }
                    offset += written
                }
            }
            close(stdinWriter)
        }.start()

        let deadline = ContinuousClock.now + timeout
        var timedOut = false
        var terminatedAt: ContinuousClock.Instant?
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid || (reaped < 0 && errno != EINTR) { break }
            let now = ContinuousClock.now
            if let terminatedAt {
                // A child that ignores SIGTERM (or hangs in its handler) is killed with its process group.
                if now - terminatedAt > .seconds(5) { kill(-pid, SIGKILL) }
            } else if now > deadline {
                timedOut = true
                terminatedAt = now
                kill(-pid, SIGTERM)
            }
            usleep(5_000)  // polling a child's exit with a deadline; not synchronisation between our threads
        }
        // A descendant that outlives the child (a server it started) may hold the pipes open: EOF then never
        // comes. Output is read for at most 10 s after the exit, then the run returns what it has.
        let (out, err, complete) = collector.finish(within: .seconds(10))
        var stderr = String(decoding: err, as: UTF8.self)
        if !complete { stderr += "\n[ProcessRunner: output still open 10 s after the exit; a descendant holds it]" }
        return Result(exitCode: exitCode(waitStatus: status), stdout: String(decoding: out, as: UTF8.self),
                      stderr: stderr, stdoutBytes: Array(out), timedOut: timedOut,
                      elapsed: ContinuousClock.now - spawnedAt)
    }

    /// A `waitpid` status as an exit code; a signal reads 128 + N. (WIFEXITED / WEXITSTATUS are macros Swift does
    /// not import: low 7 bits zero means a normal exit.)
    static func exitCode(waitStatus status: Int32) -> Int32 {
        status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }

    /// A pipe whose both ends close on exec (posix_spawn's dup2 gives the child its own copies).
    private static func makePipe() throws -> [Int32] {
        var fds: [Int32] = [-1, -1]
        guard starling_pipe_cloexec(&fds) == 0 else {
            throw SpawnFailed(executable: "pipe2", reason: String(cString: strerror(errno)))
        }
        return fds
    }

    public struct SpawnFailed: Error, CustomStringConvertible {
        public let executable: String
        public let reason: String
        public var description: String { "cannot start \(executable): \(reason)" }
    }
}

/// Reads a child's stdout and stderr on one thread with poll(2), so neither pipe fills and blocks the child, and
/// stops at EOF on both or when `finish(within:)` gives up. The thread owns both read ends and closes them.
private final class OutputCollector: @unchecked Sendable {  // `state` is guarded by `lock`.
    private struct State {
        var out = Data()
        var err = Data()
        var done = false
        var stop = false
    }
    private let lock = NSCondition()
    private var state = State()

    init(out: Int32, err: Int32) {
        Thread { [self] in read(out: out, err: err) }.start()
    }

    private func read(out: Int32, err: Int32) {
        var open: [Int32] = [out, err]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty {
            if lock.withLock({ state.stop }) { break }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), 100)
            if ready < 0 && errno != EINTR { break }
            guard ready > 0 else { continue }
            for entry in fds where entry.revents != 0 {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(entry.fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    let data = Data(buffer[0..<count])
                    lock.withLock { if entry.fd == out { state.out.append(data) } else { state.err.append(data) } }
                } else if count == 0 || errno != EINTR {
                    open.removeAll { $0 == entry.fd }
                }
            }
        }
        close(out)  // the reader owned both read ends
        close(err)
        lock.withLock {
            state.done = true
            lock.broadcast()
        }
    }

    /// Both outputs and whether they were read to EOF; waits at most `limit` for the EOFs, kept on the monotonic
    /// clock in waits of at most 100 ms (a wall-clock deadline, `NSCondition.wait(until:)`, moves with the system
    /// clock).
    func finish(within limit: Duration) -> (Data, Data, Bool) {
        let deadline = ContinuousClock.now + limit
        lock.lock()
        defer { lock.unlock() }
        while !state.done && ContinuousClock.now < deadline {
            _ = lock.wait(until: Date(timeIntervalSinceNow: 0.1))
        }
        let complete = state.done
        if !complete {
            state.stop = true
            while !state.done { lock.wait() }  // the reader notices `stop` within its 100 ms poll
        }
        return (state.out, state.err, complete)
    }
}
