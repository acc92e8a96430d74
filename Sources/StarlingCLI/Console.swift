import Glibc

/// Unbuffered writes to standard output and error (C's `stdout`/`stderr` globals are not usable from Swift 6
/// code, and `print` is block-buffered when stdout is a pipe: scripts waiting for a line would hang).
enum Console {
    static func out(_ text: String) { write(1, text) }
    static func error(_ text: String) { write(2, text) }

    private static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return -1 }
                return Glibc.write(fd, base + offset, buffer.count - offset)
            }
            if written <= 0 { return }
            offset += written
        }
    }
}
