import Foundation
import Synchronization

/// The `starling` binary built by `swift build` (ops/test builds it before running the tests).
public enum StarlingBinary {
    public struct NotBuilt: Error, CustomStringConvertible {
        public let searched: [String]
        public var description: String { "starling binary not found (looked in \(searched)); run the suite via ops/test" }
    }

    /// The debug binary next to the test bundle, or STARLING_BINARY.
    public static func path() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["STARLING_BINARY"] { return explicit }
        var candidates: [String] = []
        // The test bundle lives in .build/<triple>/debug/; so does the executable.
        let bundle = Bundle.main.executablePath ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: bundle).deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(directory.appendingPathComponent("starling").path)
            directory = directory.deletingLastPathComponent()
        }
        candidates.append(FileManager.default.currentDirectoryPath + "/.build/debug/starling")
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        throw NotBuilt(searched: candidates)
    }
}

/// A long-running child process (the hub, an agent, a server) whose output is collected as it arrives.
/// Killed (SIGKILL) when the test forgets to stop it, at deinit.
public final class ChildProcess: @unchecked Sendable {  // `process` is only touched under `lock` or after exit.
    private let process: Process
    private let collected = OutputBuffer()

    /// The merged output so far, shared with the thread that reads it, and whether it reached EOF.
    private final class OutputBuffer: Sendable {
        let text = Mutex<String>("")
        let closed = Atomic<Bool>(false)
    }

    private init(process: Process) { self.process = process }

    /// Starts `executable` with this process's environment, `environment` added over it and the variables named in
    /// `unsetting` removed; stdout and stderr are merged into `output`.
    public static func launch(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                              unsetting: [String] = [], workingDirectory: String? = nil) throws -> ChildProcess {
        let process = Process()
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var inherited = ProcessInfo.processInfo.environment
        for name in unsetting { inherited[name] = nil }
        process.environment = inherited.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let child = ChildProcess(process: process)
        try process.run()
        // A thread of its own reads the pipe with blocking reads until EOF and owns the read end until then. (A
        // `readabilityHandler` dispatch source crashed the test process in libdispatch's event loop when the
        // pipe's descriptor was closed under it: "Bad pointer dereference" in `_dispatch_event_loop_drain`.)
        let reader = pipe.fileHandleForReading
        let buffer = child.collected
        let thread = Thread {
            while true {
                let data = reader.availableData
                if data.isEmpty { break }
                buffer.text.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
            try? reader.close()
            buffer.closed.store(true, ordering: .releasing)
        }
        thread.name = "child-output"
        thread.start()
        return child
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    public var pid: Int32 { process.processIdentifier }
    public var output: String { collected.text.withLock { $0 } }
    public var isRunning: Bool { process.isRunning }

    public func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits until a line of output contains `text`; returns that line.
    public func waitForOutputLine(containing text: String, timeout: Duration = .seconds(30)) async throws -> String {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if let line = output.split(separator: "\n").first(where: { $0.contains(text) }) { return String(line) }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ChildProcessError(message: "no output line with '\(text)'; output so far:\n\(output)")
    }

    /// Waits for the process to exit; returns its status (signal number + 128 when killed).
    public func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while process.isRunning {
            if clock.now > deadline { throw ChildProcessError(message: "still running after \(timeout):\n\(output)") }
            try await Task.sleep(for: .milliseconds(10))
        }
        // The last lines may still be in the pipe when the exit is seen: `output` is complete once the reader
        // reached EOF (at most 2 s more, for a descendant that holds the pipe). A test once read the output of an
        // agent that had exited and missed its final error line.
        let drained = clock.now + .seconds(2)
        while !collected.closed.load(ordering: .acquiring) && clock.now < drained {
            try await Task.sleep(for: .milliseconds(5))
        }
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }
}

public struct ChildProcessError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
