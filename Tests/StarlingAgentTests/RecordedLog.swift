import Foundation
import Logging
import Synchronization

/// An agent's log kept in memory at debug level (its last `capacity` lines), for a test to print when an assertion
/// about the agent's behaviour fails: a timing-dependent failure in CI then says what the agent did.
final class RecordedLog: Sendable {
    private let lines = Mutex<[String]>([])
    private let capacity: Int

    init(capacity: Int = 2_000) { self.capacity = capacity }

    /// A logger writing into this record at `debug`.
    func logger(label: String) -> Logger {
        var logger = Logger(label: label) { [self] label in Handler(label: label, record: self) }
        logger.logLevel = .debug
        return logger
    }

    /// The recorded lines, oldest first.
    var text: String { lines.withLock { $0.joined(separator: "\n") } }

    fileprivate func append(_ line: String) {
        lines.withLock { lines in
            if lines.count >= capacity { lines.removeFirst(lines.count - capacity + 1) }
            lines.append(line)
        }
    }

    private struct Handler: LogHandler {
        let label: String
        let record: RecordedLog
        var logLevel: Logger.Level = .debug
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(
            level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
            file: String, function: String, line: UInt
        ) {
            let merged = metadata.merging(explicit ?? [:]) { $1 }
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            record.append("\(Date()) \(level) \(label): \(message) \(fields)")
        }
    }
}
