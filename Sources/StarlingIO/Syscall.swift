import CShims
import Glibc

/// The one place where system calls are made and their failures classified.
///
/// `EINTR` is retried; would-block (`EAGAIN`/`EWOULDBLOCK`/`EINPROGRESS`) is returned as `nil`; a bad
/// descriptor or a bad address is a programmer error and stops the process; everything else throws.
public enum Syscall {
    /// Runs `body` until it does not fail with `EINTR`. Returns nil when the call would block.
    @inline(__always)
    public static func call<T: BinaryInteger>(_ name: StaticString, _ body: () -> T) throws(IOError) -> T? {
        while true {
            let result = body()
            if result >= 0 { return result }
            let err = starling_errno()
            switch err {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK, EINPROGRESS:
                return nil
            case EBADF, EFAULT:
                preconditionFailure("\(name) failed with \(describe(errno: err)): a descriptor or buffer bug")
            default:
                throw IOError(.syscallFailed, "system call failed", syscall: "\(name)", errno: err)
            }
        }
    }

    /// `strerror` text for an errno value.
    public static func describe(errno err: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        let text = buffer.withUnsafeMutableBufferPointer { storage -> String? in
            guard let base = storage.baseAddress else { return nil }
            // Glibc's module exposes the XSI strerror_r: 0 on success, text in the buffer.
            guard strerror_r(err, base, storage.count) == 0 else { return nil }
            return String(cString: base)
        }
        return (text ?? "unknown error") + " (errno \(err))"
    }

    /// Closes a descriptor; errors other than EBADF are ignored (the descriptor is gone either way).
    public static func close(_ fd: Int32) {
        let result = Glibc.close(fd)
        if result != 0 && starling_errno() == EBADF {
            preconditionFailure("close(\(fd)) of a descriptor that was not open")
        }
    }

    /// Nanoseconds on the monotonic clock.
    @inline(__always)
    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Microseconds since the Unix epoch on the real-time clock (for HLCs and timestamps).
    public static func wallClockMicros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating at `UInt64.max` and at 0 for negative values.
    public var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        let (product, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        return product &+ UInt64(attoseconds / 1_000_000_000)
    }
}
