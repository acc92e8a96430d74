/// One message of a running replication stream (the CopyData payloads of START_REPLICATION's CopyBoth mode).
///
/// The server sends two kinds (PostgreSQL manual, "Streaming Replication Protocol"):
/// ```
/// 'w' XLogData         Int64 walStart, Int64 walEnd, Int64 serverTime, Byte[n] payload
/// 'k' Primary keepalive Int64 walEnd, Int64 serverTime, Byte1 replyRequested
/// ```
/// For logical replication the XLogData payload is one output-plugin message (for pgoutput: decode it with
/// `PgOutputDecoder`). Decoding is pure and bounds-checked; `standbyStatusUpdate` builds the client's answer.
public enum PostgresReplicationMessage: Sendable, Hashable {
    case xLogData(XLogData)
    case keepalive(Keepalive)

    /// WAL data: for logical decoding one plugin message.
    ///
    /// Positions in a logical stream (PostgreSQL 15, pgoutput; pinned by `framePositionsAreRecordLSNs`): a
    /// change's `walStart` is the LSN of its WAL record (rows of one multi-insert record, e.g. from COPY, share
    /// it), a Begin carries its first change's LSN, a Commit its end LSN; `walEnd` is the same value. A
    /// Relation's or Type's position is not meaningful.
    public struct XLogData: Sendable, Hashable {
        /// The WAL position of the message (see above).
        public var walStart: LSN
        /// The server's WAL position when sending (for logical streams: equal to `walStart`).
        public var walEnd: LSN
        /// The server's clock when it sent the message.
        public var serverTime: PostgresTimestamp
        /// The plugin's message, copied out of libpq's buffer (owned by this value).
        public var payload: [UInt8]

        public init(walStart: LSN, walEnd: LSN, serverTime: PostgresTimestamp, payload: [UInt8]) {
            self.walStart = walStart
            self.walEnd = walEnd
            self.serverTime = serverTime
            self.payload = payload
        }
    }

    /// The server's heartbeat; when `isReplyRequested` the client must send a status update soon or the
    /// server drops the connection after `wal_sender_timeout`.
    public struct Keepalive: Sendable, Hashable {
        /// The server's current end of WAL.
        public var walEnd: LSN
        /// The server's clock when it sent the keepalive.
        public var serverTime: PostgresTimestamp
        /// True when the server asks for an immediate standby status update.
        public var isReplyRequested: Bool

        public init(walEnd: LSN, serverTime: PostgresTimestamp, isReplyRequested: Bool) {
            self.walEnd = walEnd
            self.serverTime = serverTime
            self.isReplyRequested = isReplyRequested
        }
    }

    /// Decodes one CopyData payload; throws `malformedMessage` for an unknown tag, a short or long frame.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(PostgresError) -> PostgresReplicationMessage {
        var reader = WireReader(bytes, what: "replication message")
        let tag = try reader.uint8("tag")
        switch tag {
        case UInt8(ascii: "w"):
            reader.what = "XLogData"
            let walStart = try reader.lsn("walStart")
            let walEnd = try reader.lsn("walEnd")
            let serverTime = try reader.timestamp("serverTime")
            return .xLogData(
                XLogData(walStart: walStart, walEnd: walEnd, serverTime: serverTime, payload: reader.rest()))
        case UInt8(ascii: "k"):
            reader.what = "keepalive"
            let walEnd = try reader.lsn("walEnd")
            let serverTime = try reader.timestamp("serverTime")
            let reply = try reader.uint8("replyRequested")
            try reader.requireEnd()
            return .keepalive(Keepalive(walEnd: walEnd, serverTime: serverTime, isReplyRequested: reply != 0))
        default:
            throw reader.malformed("unknown tag 0x\(String(tag, radix: 16))")
        }
    }

    /// Convenience for tests and callers holding an array.
    public static func decode(_ bytes: [UInt8]) throws(PostgresError) -> PostgresReplicationMessage {
        try bytes.withUnsafeBufferPointer { (buffer) throws(PostgresError) in
            try decode(UnsafeRawBufferPointer(buffer))
        }
    }

    /// The client's standby status update (`'r'`): 34 bytes, positions as the next byte the client needs
    /// (one past the last it wrote, flushed, applied), `time` as the client's clock.
    public static func standbyStatusUpdate(
        written: LSN, flushed: LSN, applied: LSN, time: PostgresTimestamp, isReplyRequested: Bool
    ) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(34)
        bytes.append(UInt8(ascii: "r"))
        for value in [
            written.rawValue, flushed.rawValue, applied.rawValue, UInt64(bitPattern: time.microsecondsSince2000),
        ] {
            withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
        }
        bytes.append(isReplyRequested ? 1 : 0)
        return bytes
    }
}
