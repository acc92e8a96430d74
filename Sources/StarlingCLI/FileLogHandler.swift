import Foundation
import Logging
import Synchronization

/// A swift-log handler appending lines to a file (the demo keeps the terminal for its live view).
struct FileLogHandler: LogHandler {
    /// The open file, shared by every logger made from this handler; writes are serialized by the lock.
    final class Sink: Sendable {
        private let handle: Mutex<FileHandle?>
        init(path: String) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            handle = Mutex(FileHandle(forWritingAtPath: path))
        }
        func write(_ line: String) { handle.withLock { $0?.write(Data(line.utf8)) } }
    }

    let label: String
    let sink: Sink
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        let merged = metadata.merging(explicit ?? [:]) { $1 }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        sink.write("\(Date()) \(level) \(label): \(message) \(fields)\n")
    }
}
