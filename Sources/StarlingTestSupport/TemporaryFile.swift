import Foundation

/// A file with given contents under the system temp directory, for tools that read files (h2load -d).
/// The test calls `remove()` when done.
public struct TemporaryFile: Sendable {
    public let path: String

    public init(contents: [UInt8], suffix: String = "") throws {
        let directory = NSTemporaryDirectory()
        path = directory + "/starling-\(UUID().uuidString)\(suffix)"
        guard FileManager.default.createFile(atPath: path, contents: Data(contents)) else {
            throw CocoaError(.fileWriteUnknown)
        }
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
