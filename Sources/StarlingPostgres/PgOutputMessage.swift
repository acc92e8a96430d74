/// One message of the `pgoutput` logical decoding plugin, protocol version 1 (plus the `messages` option).
///
/// The formats are PostgreSQL's "Logical Replication Message Formats" (`src/backend/replication/logical/
/// proto.c`). A transaction arrives as
/// ```
/// Begin  [Origin]  (Relation | Type | Insert | Update | Delete | Truncate | Message)*  Commit
/// ```
/// A Relation (and a Type for each column of a non-built-in type) is sent before the first change of a table
/// in a session and again after its definition changed; changes name the table only by OID, so the caller
/// keeps a `PgOutputRelationCache`. Non-transactional logical messages arrive outside Begin/Commit.
/// Values are plain data: decoding (`PgOutputDecoder`) does no IO and keeps no state.
public enum PgOutputMessage: Sendable, Hashable {
    case begin(Begin)
    case commit(Commit)
    case origin(Origin)
    case relation(PgOutputRelation)
    case type(TypeDefinition)
    case insert(Insert)
    case update(Update)
    case delete(Delete)
    case truncate(Truncate)
    case message(LogicalMessage)

    /// `'B'`: a transaction starts.
    public struct Begin: Sendable, Hashable {
        /// The LSN of the transaction's commit record (the same as `Commit.commitLSN`).
        public var finalLSN: LSN
        /// When the transaction committed.
        public var commitTime: PostgresTimestamp
        /// The transaction ID.
        public var xid: UInt32

        public init(finalLSN: LSN, commitTime: PostgresTimestamp, xid: UInt32) {
            self.finalLSN = finalLSN
            self.commitTime = commitTime
            self.xid = xid
        }
    }

    /// `'C'`: the transaction committed. Confirming `endLSN` as flushed tells the server this transaction and
    /// everything before it need not be sent again.
    public struct Commit: Sendable, Hashable {
        /// Unused by PostgreSQL 15 (always 0); kept so a future flag is not lost.
        public var flags: UInt8
        /// The LSN of the commit record.
        public var commitLSN: LSN
        /// The LSN just past the commit record: where a restart resumes after this transaction.
        public var endLSN: LSN
        /// When the transaction committed.
        public var commitTime: PostgresTimestamp

        public init(flags: UInt8, commitLSN: LSN, endLSN: LSN, commitTime: PostgresTimestamp) {
            self.flags = flags
            self.commitLSN = commitLSN
            self.endLSN = endLSN
            self.commitTime = commitTime
        }
    }

    /// `'O'`: right after Begin, when the transaction was made by a session with a replication origin set up
    /// (`pg_replication_origin_session_setup`): an applier's own transaction.
    public struct Origin: Sendable, Hashable {
        /// The commit LSN on the origin server (`pg_replication_origin_xact_setup`'s LSN; 0/0 when not set).
        public var originLSN: LSN
        /// The replication origin's name.
        public var name: String

        public init(originLSN: LSN, name: String) {
            self.originLSN = originLSN
            self.name = name
        }
    }

    /// `'Y'`: a non-built-in column type (enum, domain, composite…) a following Relation uses.
    public struct TypeDefinition: Sendable, Hashable {
        public var oid: UInt32
        /// The type's schema (`""` for `pg_catalog`).
        public var namespace: String
        public var name: String

        public init(oid: UInt32, namespace: String, name: String) {
            self.oid = oid
            self.namespace = namespace
            self.name = name
        }
    }

    /// `'I'`: a row was inserted.
    public struct Insert: Sendable, Hashable {
        public var relationOID: UInt32
        /// The new row, every column.
        public var newTuple: PgOutputTuple

        public init(relationOID: UInt32, newTuple: PgOutputTuple) {
            self.relationOID = relationOID
            self.newTuple = newTuple
        }
    }

    /// `'U'`: a row was updated.
    ///
    /// `oldTuple` is present when the replica identity requires it: with the default identity only when a key
    /// column changed (`.key`: the key columns, others NULL); with `REPLICA IDENTITY FULL` always (`.full`).
    /// In `newTuple` a TOASTed column the update did not touch is `.unchangedToast`: its value is not sent.
    public struct Update: Sendable, Hashable {
        public var relationOID: UInt32
        public var oldTuple: OldTuple?
        public var newTuple: PgOutputTuple

        public init(relationOID: UInt32, oldTuple: OldTuple?, newTuple: PgOutputTuple) {
            self.relationOID = relationOID
            self.oldTuple = oldTuple
            self.newTuple = newTuple
        }
    }

    /// `'D'`: a row was deleted; the old tuple is the key (`'K'`) or the whole row with `REPLICA IDENTITY FULL`
    /// (`'O'`).
    public struct Delete: Sendable, Hashable {
        public var relationOID: UInt32
        public var oldTuple: OldTuple

        public init(relationOID: UInt32, oldTuple: OldTuple) {
            self.relationOID = relationOID
            self.oldTuple = oldTuple
        }
    }

    /// An Update's or Delete's image of the row before the change.
    public enum OldTuple: Sendable, Hashable {
        /// `'K'`: the replica identity's key columns (the other columns are `.null`).
        case key(PgOutputTuple)
        /// `'O'`: every column (`REPLICA IDENTITY FULL`).
        case full(PgOutputTuple)

        /// The tuple, whichever kind.
        public var tuple: PgOutputTuple {
            switch self {
            case .key(let tuple), .full(let tuple): return tuple
            }
        }
    }

    /// `'T'`: tables were truncated (one message for one TRUNCATE statement).
    public struct Truncate: Sendable, Hashable {
        /// `TRUNCATE … CASCADE`.
        public var isCascade: Bool
        /// `TRUNCATE … RESTART IDENTITY`.
        public var isRestartIdentity: Bool
        /// The published tables truncated, in the server's order.
        public var relationOIDs: [UInt32]

        public init(isCascade: Bool, isRestartIdentity: Bool, relationOIDs: [UInt32]) {
            self.isCascade = isCascade
            self.isRestartIdentity = isRestartIdentity
            self.relationOIDs = relationOIDs
        }
    }

    /// `'M'`: a `pg_logical_emit_message` (only with the `messages` option).
    public struct LogicalMessage: Sendable, Hashable {
        /// True when emitted transactionally: it arrives between its transaction's Begin and Commit, and only
        /// if that transaction committed. False: delivered at once, outside any transaction.
        public var isTransactional: Bool
        /// The LSN of the message's WAL record.
        public var lsn: LSN
        /// The emitter's prefix (what the message is about).
        public var prefix: String
        /// The content, as emitted (text or bytea).
        public var content: [UInt8]

        public init(isTransactional: Bool, lsn: LSN, prefix: String, content: [UInt8]) {
            self.isTransactional = isTransactional
            self.lsn = lsn
            self.prefix = prefix
            self.content = content
        }
    }
}

/// A `'R'` Relation message: a published table's shape as the following changes encode it.
public struct PgOutputRelation: Sendable, Hashable {
    /// `pg_class.relreplident`: which old-row columns updates and deletes carry.
    public struct ReplicaIdentity: RawRepresentable, Sendable, Hashable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// `'d'`: the primary key.
        public static let `default` = ReplicaIdentity(rawValue: UInt8(ascii: "d"))
        /// `'n'`: nothing.
        public static let nothing = ReplicaIdentity(rawValue: UInt8(ascii: "n"))
        /// `'f'`: every column.
        public static let full = ReplicaIdentity(rawValue: UInt8(ascii: "f"))
        /// `'i'`: a chosen unique index.
        public static let index = ReplicaIdentity(rawValue: UInt8(ascii: "i"))
    }

    /// One column, in table order (dropped and generated columns are not sent).
    public struct Column: Sendable, Hashable {
        /// Bit 1: the column is part of the replica identity key.
        public var flags: UInt8
        public var name: String
        /// The column's type OID (`pg_type.oid`).
        public var typeOID: UInt32
        /// `atttypmod` (-1 when none; `varchar(n)` is n + 4).
        public var typeModifier: Int32

        public init(flags: UInt8, name: String, typeOID: UInt32, typeModifier: Int32) {
            self.flags = flags
            self.name = name
            self.typeOID = typeOID
            self.typeModifier = typeModifier
        }

        /// True when the column is part of the key that `'K'` old tuples carry.
        public var isKey: Bool { flags & 1 != 0 }
    }

    public var oid: UInt32
    /// The table's schema (`""` for `pg_catalog`).
    public var namespace: String
    public var name: String
    public var replicaIdentity: ReplicaIdentity
    public var columns: [Column]

    public init(oid: UInt32, namespace: String, name: String, replicaIdentity: ReplicaIdentity, columns: [Column]) {
        self.oid = oid
        self.namespace = namespace
        self.name = name
        self.replicaIdentity = replicaIdentity
        self.columns = columns
    }
}

/// A row image in a change message: one value per column of the relation, in its column order.
public struct PgOutputTuple: Sendable, Hashable {
    public var values: [PgOutputValue]

    public init(_ values: [PgOutputValue]) { self.values = values }

    public var count: Int { values.count }
    public subscript(index: Int) -> PgOutputValue { values[index] }

    /// About the bytes this image takes as JSON: each value's length plus 24 for its column name and quotes. What
    /// a consumer's batch limits count (a wide value counts as wide).
    public var approximateBytes: Int {
        values.reduce(0) { sum, value in
            switch value {
            case .text(let text): sum + 24 + text.utf8.count
            case .binary(let bytes): sum + 24 + 2 * bytes.count
            case .null, .unchangedToast: sum + 24
            }
        }
    }
}

/// One column's value in a tuple.
public enum PgOutputValue: Sendable, Hashable {
    /// `'n'`: SQL NULL (also every non-key column of a `'K'` old tuple).
    case null
    /// `'u'`: a TOASTed value the change did not modify; the server does not send it, the subscriber keeps its
    /// current value.
    case unchangedToast
    /// `'t'`: the type's text output (as `SELECT col::text` prints it).
    case text(String)
    /// `'b'`: the type's binary send format (only with the `binary` option).
    case binary([UInt8])

    /// The text, or nil for the other cases.
    public var text: String? {
        if case .text(let text) = self { return text }
        return nil
    }
}
