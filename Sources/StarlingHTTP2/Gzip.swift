import CZlib

/// gzip (RFC 1952) compression and decompression with zlib, with an output limit against zip bombs.
public enum Gzip {
    /// gzip framing in zlib: 15 window bits + 16.
    private static let gzipWindowBits: Int32 = 15 + 16

    /// Compresses `input` into a gzip member.
    public static func compress(_ input: [UInt8], level: Int32 = 6) throws(HTTP2Error) -> [UInt8] {
        var stream = z_stream()
        guard starling_zlib_deflate_init2(&stream, level, gzipWindowBits) == Z_OK else {
            throw HTTP2Error(.compression, "deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }  // zlib state is freed here on every path.
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 32)
        let produced: Int = input.withUnsafeBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                stream.next_in = UnsafeMutablePointer(mutating: inBuffer.baseAddress)
                stream.avail_in = uInt(inBuffer.count)
                stream.next_out = outBuffer.baseAddress
                stream.avail_out = uInt(outBuffer.count)
                let rc = deflate(&stream, Z_FINISH)
                return rc == Z_STREAM_END ? Int(stream.total_out) : -1
            }
        }
        guard produced >= 0 else { throw HTTP2Error(.compression, "deflate did not finish") }
        output.removeSubrange(produced...)
        return output
    }

    /// Decompresses a gzip body; refuses output beyond `maxBytes` and malformed or truncated input.
    public static func decompress(_ input: [UInt8], maxBytes: Int) throws(HTTP2Error) -> [UInt8] {
        var stream = z_stream()
        guard starling_zlib_inflate_init2(&stream, gzipWindowBits) == Z_OK else {
            throw HTTP2Error(.compression, "inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }  // zlib state is freed here on every path.
        var output: [UInt8] = []
        output.reserveCapacity(min(maxBytes, max(input.count * 4, 1024)))
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
