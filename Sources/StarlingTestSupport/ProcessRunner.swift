import Foundation

/// Runs an external program (curl, h2load, python3, openssl) for a test and captures its output.
public enum ProcessRunner {
    /// The outcome of one run.
    public struct Result: Sendable {
        public var exitCode: Int32
        public var stdout: String
        public var stderr: String
        public var stdoutBytes: [UInt8]
        public var timedOut: Bool

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
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                do {
                    continuation.resume(returning: try runBlocking(executable, arguments, stdin: stdin,
                                                                   environment: environment,
                                                                   workingDirectory: workingDirectory, timeout: timeout))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.start()
        }
    }

    private static func runBlocking(_ executable: String, _ arguments: [String], stdin: [UInt8]?,
                                    environment: [String: String]?, workingDirectory: String?,
                                    timeout: Duration) throws -> Result {
        let process = Process()
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let outPipe = Pipe()
        let errPipe = Pipe()
        let inPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = inPipe
        try process.run()
        let collector = OutputCollector(out: outPipe.fileHandleForReading, err: errPipe.fileHandleForReading)
        if let stdin { inPipe.fileHandleForWriting.write(Data(stdin)) }
        try? inPipe.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds))
        var timedOut = false
        while process.isRunning {
            if Date() > deadline {
                timedOut = true
                process.terminate()
                break
            }
            usleep(5_000)  // polling a child's exit with a deadline; not synchronisation between our threads
        }
        process.waitUntilExit()
        let (out, err) = collector.finish()
        return Result(exitCode: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                      stderr: String(decoding: err, as: UTF8.self), stdoutBytes: Array(out), timedOut: timedOut)
    }
}

/// Reads a child's stdout and stderr concurrently so neither pipe fills and blocks the child.
private final class OutputCollector: @unchecked Sendable {  // Each buffer is written by one thread, read after join.
    private var out = Data()
    private var err = Data()
    private let group = DispatchGroup()

    init(out outHandle: FileHandle, err errHandle: FileHandle) {
        group.enter()
        Thread { self.out = outHandle.readDataToEndOfFile(); self.group.leave() }.start()
        group.enter()
        Thread { self.err = errHandle.readDataToEndOfFile(); self.group.leave() }.start()
    }

    func finish() -> (Data, Data) {
        group.wait()
        return (out, err)
    }
}
