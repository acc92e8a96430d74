import CShims
import Glibc

/// An unnamed scratch file: bytes appended in order, read back at any offset from any thread (`pread`). Nothing
/// names it on disk, so its space is freed when this object is (it owns the descriptor and closes it in
/// `deinit`), and also when the process dies: a crash leaves no file behind.
public final class AnonymousFile: Sendable {
    /// Owned by this object, closed by `deinit`.
    private let descriptor: Int32

    /// Creates the file in `directory` (which must exist and be writable).
    public init(directory: String) throws(IOError) {
        let fd = starling_open_anonymous_file(directory)
        guard fd >= 0 else {
            throw IOError(
                .syscallFailed, "cannot create a scratch file in \(directory)", syscall: "open(O_TMPFILE)",
                errno: starling_errno())
        }
        descriptor = fd
    }

    deinit {
        close(descriptor)
    }

    /// Writes all of `bytes` at `offset`.
    public func write(_ bytes: [UInt8], at offset: Int64) throws(IOError) {
        var written = 0
        while written < bytes.count {
            // The buffer is not empty here, so it has a base address.
            let result = bytes.withUnsafeBytes { raw in
                pwrite(descriptor, raw.baseAddress! + written, raw.count - written, off_t(offset) + off_t(written))
            }
            if result < 0 {
                let err = starling_errno()
                if err == EINTR { continue }
                throw IOError(.syscallFailed, "writing the scratch file failed", syscall: "pwrite", errno: err)
            }
            written += result
        }
    }

    /// Reads `count` bytes at `offset`; throws when the file ends first.
    public func read(at offset: Int64, count: Int) throws(IOError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            // The buffer is not empty here, so it has a base address.
            let result = bytes.withUnsafeMutableBytes { raw in
                pread(descriptor, raw.baseAddress! + done, raw.count - done, off_t(offset) + off_t(done))
            }
            if result < 0 {
                let err = starling_errno()
                if err == EINTR { continue }
                throw IOError(.syscallFailed, "reading the scratch file failed", syscall: "pread", errno: err)
            }
            guard result > 0 else {
                throw IOError(
                    .syscallFailed, "the scratch file ends at \(offset + Int64(done)), before \(offset + Int64(count))")
            }
            done += result
        }
        return bytes
    }
}
