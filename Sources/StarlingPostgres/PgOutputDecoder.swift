/// Decodes `pgoutput` protocol version 1 messages (the payloads of XLogData frames) into `PgOutputMessage`.
///
/// Pure: no IO, no state, safe on any thread. The input is network data, so every length and count is checked
/// against the bytes that remain before anything is read or allocated; anything that does not parse exactly —
/// an unknown tag, a truncated field, a negative length, invalid UTF-8, bytes left over — throws
/// `malformedMessage` naming the message kind and offset (never the row data). Leftover bytes are an error
/// because they mean another protocol version (version 2's streamed transactions prefix changes with an xid).
///
/// Integers are big-endian, strings NUL-terminated UTF-8 (the walsender converts to the connection's
/// `client_encoding`, which `PostgresReplicationConnection` sets to UTF8).
public enum PgOutputDecoder {
    /// Decodes one message.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(PostgresError) -> PgOutputMessage {
        var reader = WireReader(bytes, what: "pgoutput message")
        let tag = try reader.uint8("tag")
        let message: PgOutputMessage
        switch tag {
        case UInt8(ascii: "B"): message = .begin(try begin(&reader))
        case UInt8(ascii: "C"): message = .commit(try commit(&reader))
        case UInt8(ascii: "O"): message = .origin(try origin(&reader))
        case UInt8(ascii: "R"): message = .relation(try relation(&reader))
        case UInt8(ascii: "Y"): message = .type(try typeDefinition(&reader))
        case UInt8(ascii: "I"): message = .insert(try insert(&reader))
        case UInt8(ascii: "U"): message = .update(try update(&reader))
        case UInt8(ascii: "D"): message = .delete(try delete(&reader))
        case UInt8(ascii: "T"): message = .truncate(try truncate(&reader))
        case UInt8(ascii: "M"): message = .message(try logicalMessage(&reader))
        default:
            // 'S', 'E', 'c', 'A' (streaming), 'b', 'P', 'K', 'r' (two-phase) belong to protocol versions 2 and 3.
            throw reader.malformed("unknown or unsupported tag 0x\(String(tag, radix: 16))")
        }
        try reader.requireEnd()
        return message
    }

    /// Decodes one message held in an array.
    public static func decode(_ bytes: [UInt8]) throws(PostgresError) -> PgOutputMessage {
        try bytes.withUnsafeBufferPointer { (buffer) throws(PostgresError) in try decode(UnsafeRawBufferPointer(buffer)) }
    }

    // MARK: - Messages (each starts with `reader` just past the tag)

    private static func begin(_ reader: inout WireReader) throws(PostgresError)
        -> PgOutputMessage.Begin
    {
        reader.what = "pgoutput Begin"
        return PgOutputMessage.Begin(
            finalLSN: try reader.lsn("final LSN"), commitTime: try reader.timestamp("commit time"),
            xid: try reader.uint32("xid"))
    }

    private static func commit(_ reader: inout WireReader) throws(PostgresError)
        -> PgOutputMessage.Commit
    {
        reader.what = "pgoutput Commit"
        return PgOutputMessage.Commit(
            flags: try reader.uint8("flags"), commitLSN: try reader.lsn("commit LSN"),
            endLSN: try reader.lsn("end LSN"), commitTime: try reader.timestamp("commit time"))
    }

    private static func origin(_ reader: inout WireReader) throws(PostgresError)
        -> PgOutputMessage.Origin
    {
        reader.what = "pgoutput Origin"
        return PgOutputMessage.Origin(originLSN: try reader.lsn("origin LSN"), name: try reader.cString("origin name"))
    }

    private static func relation(_ reader: inout WireReader) throws(PostgresError)
        -> PgOutputRelation
    {
        reader.what = "pgoutput Relation"
        let oid = try reader.uint32("relation OID")
        let namespace = try reader.cString("namespace")
        let name = try reader.cString("relation name")
        let identity = PgOutputRelation.ReplicaIdentity(rawValue: try reader.uint8("replica identity"))
        let count = Int(try reader.int16("column count"))
        // Each column takes at least 10 bytes (flags, an empty name's NUL, type OID, typmod).
        guard count >= 0, count <= reader.remaining / 10 else {
            throw reader.malformed("column count \(count) does not fit in \(reader.remaining) bytes")
        }
        var columns: [PgOutputRelation.Column] = []
        columns.reserveCapacity(count)
        for _ in 0..<count {
            columns.append(
                PgOutputRelation.Column(
                    flags: try reader.uint8("column flags"), name: try reader.cString("column name"),
                    typeOID: try reader.uint32("column type OID"), typeModifier: try reader.int32("column typmod")))
        }
        return PgOutputRelation(oid: oid, namespace: namespace, name: name, replicaIdentity: identity, columns: columns)
    }

    private static func typeDefinition(_ reader: inout WireReader)
        throws(PostgresError) -> PgOutputMessage.TypeDefinition
    {
        reader.what = "pgoutput Type"
        return PgOutputMessage.TypeDefinition(
            oid: try reader.uint32("type OID"), namespace: try reader.cString("namespace"),
            name: try reader.cString("type name"))
    }

    private static func insert(_ reader: inout WireReader) throws(PostgresError)
        -> PgOutputMessage.Insert
    {
        reader.what = "pgoutput Insert"
        let oid = try reader.uint32("relation OID")
        let marker = try reader.uint8("tuple marker")
        guard marker == UInt8(ascii: "N") else { throw reader.malformed("expected new tuple 'N', got 0x\(hex(marker))") }
        return PgOutputMessage.Insert(relationOID: oid, newTuple: try tuple(&reader))
    }

    private static func update(_ reader: inout WireReader) throws(PostgresError)
        -> PgOutputMessage.Update
    {
        reader.what = "pgoutput Update"
        let oid = try reader.uint32("relation OID")
        var marker = try reader.uint8("tuple marker")
        var oldTuple: PgOutputMessage.OldTuple?
        switch marker {
        case UInt8(ascii: "K"): oldTuple = .key(try tuple(&reader))
        case UInt8(ascii: "O"): oldTuple = .full(try tuple(&reader))
        default: oldTuple = nil
        }
        if oldTuple != nil { marker = try reader.uint8("new tuple marker") }
        guard marker == UInt8(ascii: "N") else {
            throw reader.malformed("expected 'K', 'O' or new tuple 'N', got 0x\(hex(marker))")
        }
        return PgOutputMessage.Update(relationOID: oid, oldTuple: oldTuple, newTuple: try tuple(&reader))
    }

    private static func delete(_ reader: inout WireReader) throws(PostgresError)
        -> PgOutputMessage.Delete
    {
        reader.what = "pgoutput Delete"
        let oid = try reader.uint32("relation OID")
        let marker = try reader.uint8("tuple marker")
        switch marker {
        case UInt8(ascii: "K"): return PgOutputMessage.Delete(relationOID: oid, oldTuple: .key(try tuple(&reader)))
        case UInt8(ascii: "O"): return PgOutputMessage.Delete(relationOID: oid, oldTuple: .full(try tuple(&reader)))
        default: throw reader.malformed("expected old tuple 'K' or 'O', got 0x\(hex(marker))")
        }
    }

    private static func truncate(_ reader: inout WireReader) throws(PostgresError)
        -> PgOutputMessage.Truncate
    {
        reader.what = "pgoutput Truncate"
        let count = Int(try reader.int32("relation count"))
        let options = try reader.uint8("options")
        guard count >= 0, count <= reader.remaining / 4 else {
            throw reader.malformed("relation count \(count) does not fit in \(reader.remaining) bytes")
        }
        var oids: [UInt32] = []
        oids.reserveCapacity(count)
        for _ in 0..<count { oids.append(try reader.uint32("relation OID")) }
        return PgOutputMessage.Truncate(
            isCascade: options & 1 != 0, isRestartIdentity: options & 2 != 0, relationOIDs: oids)
    }

    private static func logicalMessage(_ reader: inout WireReader)
        throws(PostgresError) -> PgOutputMessage.LogicalMessage
    {
        reader.what = "pgoutput Message"
        let flags = try reader.uint8("flags")
        let lsn = try reader.lsn("LSN")
        let prefix = try reader.cString("prefix")
        let length = Int(try reader.int32("content length"))
        return PgOutputMessage.LogicalMessage(
            isTransactional: flags & 1 != 0, lsn: lsn, prefix: prefix, content: try reader.bytes(length, "content"))
    }

    // MARK: - TupleData

    /// `Int16 count`, then per column `'n'`, `'u'`, or `'t'`/`'b'` + `Int32 length` + bytes.
    private static func tuple(_ reader: inout WireReader) throws(PostgresError) -> PgOutputTuple {
        let count = Int(try reader.int16("tuple column count"))
        // Each column takes at least its 1-byte kind.
        guard count >= 0, count <= reader.remaining else {
            throw reader.malformed("tuple column count \(count) does not fit in \(reader.remaining) bytes")
        }
        var values: [PgOutputValue] = []
        values.reserveCapacity(count)
        for _ in 0..<count {
            let kind = try reader.uint8("column kind")
            switch kind {
            case UInt8(ascii: "n"):
                values.append(.null)
            case UInt8(ascii: "u"):
                values.append(.unchangedToast)
            case UInt8(ascii: "t"):
                let length = Int(try reader.int32("column length"))
                values.append(.text(try reader.text(length, "text value")))
            case UInt8(ascii: "b"):
                let length = Int(try reader.int32("column length"))
                values.append(.binary(try reader.bytes(length, "binary value")))
            default:
                throw reader.malformed("unknown column kind 0x\(hex(kind))")
            }
        }
        return PgOutputTuple(values)
    }

    private static func hex(_ byte: UInt8) -> String { String(byte, radix: 16) }
}

/// The relations a replication session has announced (OID → `PgOutputRelation`), owned by the caller.
///
/// pgoutput sends a table's Relation message before its first change in a session and again when its shape
/// changed, so the cache starts empty with every new START_REPLICATION and is updated with every Relation
/// message, in stream order. It holds one entry per published table the session touched, which bounds it.
/// Not thread-safe: a value owned by the one thread reading the stream.
public struct PgOutputRelationCache: Sendable {
    private var relations: [UInt32: PgOutputRelation] = [:]

    public init() {}

    /// How many relations are known.
    public var count: Int { relations.count }

    /// Records `message` when it is a Relation; returns true when it was one.
    @discardableResult
    public mutating func record(_ message: PgOutputMessage) -> Bool {
        guard case .relation(let relation) = message else { return false }
        relations[relation.oid] = relation
        return true
    }

    /// The relation with `oid`, if announced.
    public subscript(oid: UInt32) -> PgOutputRelation? { relations[oid] }

    /// The relation a change refers to, checking that it was announced and that `tuple` has one value per
    /// column; throws `malformedMessage` otherwise (a change can only be applied with its shape).
    public func relation(for oid: UInt32, matching tuple: PgOutputTuple) throws(PostgresError) -> PgOutputRelation {
        guard let relation = relations[oid] else {
            throw PostgresError(code: .malformedMessage, message: "pgoutput change for unannounced relation \(oid)")
        }
        guard relation.columns.count == tuple.count else {
            throw PostgresError(
                code: .malformedMessage,
                message: "pgoutput tuple has \(tuple.count) values for \(relation.columns.count) columns of relation "
                    + "\(relation.namespace).\(relation.name)")
        }
        return relation
    }

    /// Forgets everything (a new replication session).
    public mutating func removeAll() { relations.removeAll() }
}
