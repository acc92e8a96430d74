import CZlib

/// gzip (RFC 1952) compression and decompression with zlib, with an output limit against zip bombs.
public enum Gzip {
    /// gzip framing in zlib: 15 window bits + 16.
    private static let gzipWindowBits: Int32 = 15 + 16

    /// zlib's fastest level. Bodies are JSON compressed once per request (a pull page for each region that reads
    /// it): on a 1.47 MB page of 5,000 log entries level 1 took 4.7 ms against 12.4 ms at zlib's default 6, for
    /// 264 KB against 213 KB; at 6 the hub spent more CPU compressing pull pages than sequencing (W1 R=8).
    public static let defaultLevel: Int32 = 1

    /// Compresses `input` into a gzip member.
    public static func compress(_ input: [UInt8], level: Int32 = defaultLevel) throws(HTTP2Error) -> [UInt8] {
        var stream = z_stream()
        guard starling_zlib_deflate_init2(&stream, level, gzipWindowBits) == Z_OK else {
            throw HTTP2Error(.compression, "deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }  // zlib state is freed here on every path.
        // Not zero-filled: deflate writes the first `initializedCount` bytes, the only ones kept.
        var finished = false
        let output = [UInt8](unsafeUninitializedCapacity: Int(deflateBound(&stream, uLong(input.count))) + 32) {
            outBuffer, initializedCount in
            input.withUnsafeBufferPointer { inBuffer in
                stream.next_in = UnsafeMutablePointer(mutating: inBuffer.baseAddress)
                stream.avail_in = uInt(inBuffer.count)
                stream.next_out = outBuffer.baseAddress
                stream.avail_out = uInt(outBuffer.count)
                finished = deflate(&stream, Z_FINISH) == Z_STREAM_END
                initializedCount = finished ? Int(stream.total_out) : 0
            }
        }
        guard finished else { throw HTTP2Error(.compression, "deflate did not finish") }
        return output
    }

    /// The room to reserve for `input`'s output: its trailer's size (ISIZE, the length modulo 2^32) when
    /// plausible — deflate expands at most 1032:1 —, so a 1.5 MB page inflates without growing its buffer
    /// again and again; at most `maxBytes`. Only a hint: the output is still bounded by `maxBytes` as it grows.
    static func expectedSize(of input: [UInt8], maxBytes: Int) -> Int {
        let fallback = min(maxBytes, max(input.count &* 4, 1024))
        guard input.count >= 18 else { return fallback }
        let tail = input.count - 4
        let size = Int(input[tail]) | Int(input[tail + 1]) << 8 | Int(input[tail + 2]) << 16 | Int(input[tail + 3]) << 24
        guard size > 0, size <= input.count &* 1032 else { return fallback }
        return min(maxBytes, size)
    }

    /// Decompresses a gzip body; refuses output beyond `maxBytes` and malformed or truncated input.
    public static func decompress(_ input: [UInt8], maxBytes: Int) throws(HTTP2Error) -> [UInt8] {
        var stream = z_stream()
        guard starling_zlib_inflate_init2(&stream, gzipWindowBits) == Z_OK else {
            throw HTTP2Error(.compression, "inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }  // zlib state is freed here on every path.
        var output: [UInt8] = []
        output.reserveCapacity(expectedSize(of: input, maxBytes: maxBytes))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var finished = false
        let failure: HTTP2Error? = input.withUnsafeBufferPointer { inBuffer in
            stream.next_in = UnsafeMutablePointer(mutating: inBuffer.baseAddress)
            stream.avail_in = uInt(inBuffer.count)
            while !finished {
                let (rc, produced) = chunk.withUnsafeMutableBufferPointer { outBuffer in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = uInt(outBuffer.count)
                    let rc = inflate(&stream, Z_NO_FLUSH)
                    return (rc, outBuffer.count - Int(stream.avail_out))
                }
                switch rc {
                case Z_OK, Z_STREAM_END, Z_BUF_ERROR:
                    if output.count + produced > maxBytes {
                        return HTTP2Error(.bodyTooLarge, "gzip body inflates beyond \(maxBytes) bytes")
                    }
                    output.append(contentsOf: chunk[0..<produced])
                    if rc == Z_STREAM_END {
                        finished = true
                    } else if produced == 0 && (rc == Z_BUF_ERROR || stream.avail_in == 0) {
                        return HTTP2Error(.compression, "gzip body is truncated")
                    }
                default:
                    return HTTP2Error(.compression, "gzip body is malformed (zlib \(rc))")
                }
            }
            if stream.avail_in != 0 {
                return HTTP2Error(.compression, "trailing bytes after the gzip body")
            }
            return nil
        }
        if let failure { throw failure }
        return output
    }
}
