import StarlingCore
import StarlingPostgres

/// Turns pgoutput messages, in stream order, into captured changes (DESIGN.md "Engine v2", capture from the
/// WAL). Pure apart from the ``CaptureQueue`` it hands transactions to; owned by the decoder thread.
///
/// A transaction that carries this agent's replication origin is its own (an apply, verdict images, a
/// bootstrap): never pushed; its marker moves the ``CaptureLedger`` and its writes may overwrite a pending
/// local change. Any other transaction is the application's: each row change becomes a ``Change`` with its
/// base from the ledger and an HLC stamp from its commit time. While `switching` from trigger capture, the
/// application's changes went through the outbox until the transaction that dropped the triggers (its marker
/// says `switch`), so they are skipped up to it.
struct WALDecoder: Sendable {
    let region: String
    let originName: String
    private(set) var ledger: CaptureLedger
    private(set) var switching: Bool
    private(set) var clock: HybridLogicalClock
    private let clockOffsetMicros: Int64
    private let shapes: [String: TableShape]
    private var relations = PgOutputRelationCache()
    /// Types, column histories and the tables' columns as the hub has them (``WALSchemas``).
    private var schemas: WALSchemas
    /// Each relation's columns as decoded, computed once per Relation message.
    private var resolved: [UInt32: [TableShape.Column]] = [:]
    private var transaction: Transaction?

    /// Where and past what size a transaction's decoded changes go to a scratch file (``SpilledTransaction``).
    struct Spill: Sendable {
        var directory: String
        var threshold: Int
    }

    private let spill: Spill

    /// The transaction being decoded.
    private struct Transaction {
        var begin: PgOutputMessage.Begin
        var isOwn = false
        var marker: CaptureLedger.Marker?
        var isSwitch = false
        var written: [TableKey] = []
        /// The content of the transaction's ``WrittenKeys`` message (an own transaction's): its keys, read only when
        /// they matter (``ownRowsMatter(_:)``).
        var writtenContent: [UInt8]?
        /// Schema changes made here in this transaction (``WALSchemas``), pushed before its row changes.
        var schemaChanges: [CaptureQueue.CapturedSchema] = []
        /// The application's changes so far, in order; moved to `spill` past the threshold.
        var captured: [CaptureQueue.Captured] = []
        var spill: SpilledTransaction.Writer?
        /// The WAL record of the previous change, and that change's place among the record's changes.
        var previousLSN = LSN.invalid
        var ordinal = 0
    }

    init(
        region: String, originName: String, ledger: CaptureLedger, switching: Bool, lastHLC: Int64,
        clockOffsetMicros: Int64, shapes: [TableShape], schemas: WALSchemas = WALSchemas(), spill: Spill
    ) {
        self.schemas = schemas
        self.spill = spill
        self.region = region
        self.originName = originName
        self.ledger = ledger
        self.switching = switching
        self.clock = HybridLogicalClock(seed: lastHLC)
        self.clockOffsetMicros = clockOffsetMicros
        self.shapes = Dictionary(shapes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Whether a transaction is open (between Begin and Commit).
    var isInTransaction: Bool { transaction != nil }

    /// Feeds one XLogData payload (`recordLSN`: its WAL start); returns the finished transaction's changes and
    /// overwritten positions at a Commit, nil otherwise.
    mutating func feed(_ payload: [UInt8], recordLSN: LSN) throws(AgentError) -> Finished? {
        // A row of the agent's own transaction that `change` would not look at is not even decoded: at R regions
        // most of the stream is the agent's applies of the other regions' changes.
        if let kind = payload.first,
            kind == UInt8(ascii: "I") || kind == UInt8(ascii: "U") || kind == UInt8(ascii: "D"),
            let open = transaction, skipsRows(of: open)
        {
            return nil
        }
        let message: PgOutputMessage
        do {
            message = try PgOutputDecoder.decode(payload)
        } catch {
            throw AgentError(code: .capture, message: "the WAL stream sent a message Starling cannot read: \(error)")
        }
        switch message {
        case .relation(let relation):
            relations.record(message)
            resolved[relation.oid] = nil
        case .type:
            break
        case .begin(let begin):
            transaction = Transaction(begin: begin)
        case .origin(let origin):
            if WALSetup.isOwn(origin: origin.name, agentOrigin: originName) { transaction?.isOwn = true }
        case .message(let logical) where logical.isTransactional && logical.prefix == AgentStore.schemaMessagePrefix:
            try schemaMessage(logical.content, recordLSN: recordLSN)
        case .message(let logical) where logical.isTransactional && logical.prefix == WrittenKeys.prefix:
            // An application's transaction cannot speak for the agent: only an own transaction's list counts.
            if transaction?.isOwn == true { transaction?.writtenContent = logical.content }
        case .message(let logical):
            guard logical.isTransactional, logical.prefix == CaptureLedger.Marker.prefix else { break }
            let json: JSONValue
            do {
                json = try JSONValue(parsing: logical.content)
            } catch {
                throw AgentError(code: .capture, message: "a Starling marker in the WAL is not JSON: \(error)")
            }
            if json["switch"]?.boolValue == true {
                transaction?.isSwitch = true
            } else {
                transaction?.marker = try CaptureLedger.Marker(json: json)
            }
        case .insert(let insert):
            try change(relation: insert.relationOID, old: nil, new: insert.newTuple, recordLSN: recordLSN)
        case .update(let update):
            try change(relation: update.relationOID, old: update.oldTuple, new: update.newTuple, recordLSN: recordLSN)
        case .delete(let delete):
            try change(relation: delete.relationOID, old: delete.oldTuple, new: nil, recordLSN: recordLSN)
        case .truncate(let truncate):
            guard let open = transaction, !open.isOwn else { break }
            let names = truncate.relationOIDs.compactMap { relations[$0].map { "\($0.namespace).\($0.name)" } }
            throw AgentError(
                code: .capture,
                message: "TRUNCATE of synced table(s) \(names.joined(separator: ", ")) cannot be replicated: "
                    + "delete the rows instead (the capture refuses TRUNCATE on synced tables)")
        case .commit(let commit):
            guard let open = transaction else { return nil }
            transaction = nil
            return try finish(open, commit: commit)
        }
        return nil
    }

    /// A finished transaction.
    struct Finished: Sendable {
        var changes: [CaptureQueue.Captured]
        var overwritten: [StreamPosition]
        var commitEnd: LSN
        /// The versions an agent transaction's marker gave keys (``CaptureQueue/recordVersions(_:)``).
        var versions: [TableKey: Int64] = [:]
        /// The seq an agent transaction rewound the region to (``CaptureQueue/rewind(to:)``).
        var rewind: Int64? = nil
        /// An application transaction too large for memory: its changes are here, not in `changes`.
        var spilled: SpilledTransaction? = nil
        /// Schema changes the transaction made, queued before its changes.
        var schemaChanges: [CaptureQueue.CapturedSchema] = []
    }

    private mutating func finish(_ open: Transaction, commit: PgOutputMessage.Commit) throws(AgentError) -> Finished {
        if open.isOwn {
            if open.isSwitch { switching = false }
            if let observed = open.marker?.observedHLC { clock.observe(observed) }
            var written = open.written
            if let content = open.writtenContent, ownRowsMatter(open) {
                written += try WrittenKeys.keys(content, marker: open.marker)
            }
            let overwritten = ledger.own(marker: open.marker ?? .init(), writtenKeys: written)
            return Finished(
                changes: [], overwritten: overwritten, commitEnd: commit.endLSN, versions: open.marker?.versions ?? [:],
                rewind: open.marker?.rewind)
        }
        var schemaChanges = open.schemaChanges
        for index in schemaChanges.indices { schemaChanges[index].commitEnd = commit.endLSN }
        if var writer = open.spill {
            return Finished(
                changes: [], overwritten: [], commitEnd: commit.endLSN, spilled: try writer.finish(commitEnd: commit.endLSN),
                schemaChanges: schemaChanges)
        }
        var changes = open.captured
        for index in changes.indices { changes[index].commitEnd = commit.endLSN }
        return Finished(changes: changes, overwritten: [], commitEnd: commit.endLSN, schemaChanges: schemaChanges)
    }

    /// Turns one application row change into the transaction's next captured change: its id from its WAL record,
    /// its base from the ledger, its stamp from the commit time. Done as the change arrives (the ledger sees no
    /// other transaction between a Begin and its Commit), so a transaction past the spill threshold is written
    /// out as it is decoded.
    private mutating func capture(
        _ open: inout Transaction, table: String, op: ChangeOperation, key: JSONObject, before: JSONObject?,
        after: JSONObject?, recordLSN: LSN, bytes: Int
    ) throws(AgentError) {
        let commitLSN = open.begin.finalLSN.rawValue
        let number = try Self.number(&open, recordLSN: recordLSN)
        let position = StreamPosition(commitLSN: commitLSN, number: number)
        let tableKey = TableKey(table: table, key: key)
        let base = ledger.capture(tableKey, at: position)
        // One stamp per change, strictly increasing in the stream: deterministic from the stream and the clock
        // saved with the checkpoint, so a change decoded again is pushed with the same HLC.
        let stamp = clock.tick(nowMicros: open.begin.commitTime.unixMicroseconds &+ clockOffsetMicros)
        let change: Change
        do {
            change = try Change(
                id: ChangeID(origin: region, number: number).description,
                tx: ChangeID(origin: region, number: WALChangeNumber.transaction(commitLSN: commitLSN)).description,
                table: table, op: op, key: key, before: before, after: after, base: base, hlc: stamp)
        } catch {
            throw AgentError(code: .capture, message: "decoded change of \(table) is invalid: \(error)")
        }
        let captured = CaptureQueue.Captured(
            change: change, position: position, key: tableKey, commitEnd: .invalid, approximateBytes: bytes)
        if open.spill != nil {
            try open.spill?.append(captured)
            return
        }
        open.captured.append(captured)
        if open.captured.count > spill.threshold {
            open.spill = try SpilledTransaction.Writer(directory: spill.directory, captured: open.captured)
            open.captured = []
        }
    }

    /// Records one row change of the open transaction.
    /// The agent's own rows are not decoded when they do not matter (``ownRowsMatter(_:)``), nor when the
    /// transaction listed its keys (``WrittenKeys``, before its rows; a slot decoding with `starling_pgoutput` does
    /// not even send them then).
    private func skipsRows(of open: Transaction) -> Bool {
        open.isOwn && (open.writtenContent != nil || !ownRowsMatter(open))
    }

    /// Whether the keys an own transaction writes matter: only while some local change waits for its verdict
    /// (``CaptureLedger/own(marker:writtenKeys:)``), most of the stream not. An apply that deferred every key pending
    /// up to its marker's position (the marker comes before its rows) can have overwritten only changes decoded after
    /// it: with none, not either (most of an apply-heavy stream).
    private func ownRowsMatter(_ open: Transaction) -> Bool {
        !(ledger.pending.isEmpty || open.marker?.deferredThrough.map { !ledger.hasPending(after: $0) } == true)
    }

    private mutating func change(
        relation oid: UInt32, old: PgOutputMessage.OldTuple?, new: PgOutputTuple?, recordLSN: LSN
    ) throws(AgentError) {
        guard var open = transaction, !skipsRows(of: open) else { return }
        transaction = nil
        defer { transaction = open }
        guard let relation = relations[oid] else {
            throw AgentError(code: .capture, message: "the WAL stream changed relation \(oid) before announcing it")
        }
        let name = "\(relation.namespace).\(relation.name)"
        guard let shape = shapes[name] else { return }
        if open.isOwn {
            let keyOld = try old.flatMap { old throws(AgentError) in
                try Self.key(of: old.tuple, relation: relation, shape: shape)
            }
            let keyNew = try new.flatMap { new throws(AgentError) in try Self.key(of: new, relation: relation, shape: shape) }
            if let keyOld { open.written.append(TableKey(table: name, key: keyOld)) }
            if let keyNew, keyNew != keyOld { open.written.append(TableKey(table: name, key: keyNew)) }
            return
        }
        let columns = try columns(of: relation, shape: shape)
        let before = try old.map { old throws(AgentError) in
            guard case .full(let tuple) = old else {
                throw AgentError(
                    code: .capture,
                    message: "table \(name) has no REPLICA IDENTITY FULL: the agent sets it at start; "
                        + "ALTER TABLE \(name) REPLICA IDENTITY FULL", key: name)
            }
            return try Self.image(tuple, columns: columns, fallback: nil, table: name)
        }
        let after = try new.map { tuple throws(AgentError) in
            try Self.image(tuple, columns: columns, fallback: before, table: name)
        }
        let keyOld = before.map { Self.key($0, shape: shape) }
        let keyNew = after.map { Self.key($0, shape: shape) }
        if switching { return }
        // The images' size as the batch limits count it (the outbox reader counts its images' text the same way).
        let bytes = 96 + (old?.tuple.approximateBytes ?? 0) + (new?.approximateBytes ?? 0)
        switch (keyOld, keyNew) {
        case (let k?, let n?) where k == n:
            if before == after { return }
            try capture(&open, table: name, op: .update, key: n, before: before, after: after, recordLSN: recordLSN, bytes: bytes)
        case (let k?, let n?):
            // A primary-key change travels as delete + insert, as trigger capture sends it.
            try capture(&open, table: name, op: .delete, key: k, before: before, after: nil, recordLSN: recordLSN, bytes: bytes)
            try capture(&open, table: name, op: .insert, key: n, before: nil, after: after, recordLSN: recordLSN, bytes: bytes)
        case (let k?, nil):
            try capture(&open, table: name, op: .delete, key: k, before: before, after: nil, recordLSN: recordLSN, bytes: bytes)
        case (nil, let n?):
            try capture(&open, table: name, op: .insert, key: n, before: nil, after: after, recordLSN: recordLSN, bytes: bytes)
        case (nil, nil):
            return
        }
    }

    /// The change number of the transaction's next change or schema change: its WAL record, and its place among
    /// the record's changes.
    private static func number(_ open: inout Transaction, recordLSN: LSN) throws(AgentError) -> Int64 {
        open.ordinal = recordLSN == open.previousLSN ? open.ordinal + 1 : 0
        open.previousLSN = recordLSN
        guard let number = WALChangeNumber.make(recordLSN: recordLSN.rawValue, ordinal: open.ordinal) else {
            throw AgentError(code: .capture, message: "WAL position \(recordLSN) is beyond change ids")
        }
        return number
    }

    /// A `starling.schema` message: the table's columns after a schema change. The agent's own (a change from the
    /// log it applied) only moves the columns the next change made here is computed from; the application's (the
    /// event trigger's, for an `ALTER TABLE` run here) becomes a schema change to push, before the transaction's
    /// row changes.
    private mutating func schemaMessage(_ content: [UInt8], recordLSN: LSN) throws(AgentError) {
        guard var open = transaction else { return }
        let (table, statement, columns) = try WALSchemas.message(content)
        guard shapes[table] != nil else { return }
        schemas.history[table, default: []].insert(columns.map { $0.name })
        let previous = schemas.columns[table] ?? []
        schemas.columns[table] = columns
        guard !open.isOwn, !switching else { return }
        // A statement that changed no column (an `ADD COLUMN IF NOT EXISTS` of one that exists) is nothing to push.
        guard previous.map({ [$0.name, $0.type] }) != columns.map({ [$0.name, $0.type] }) else { return }
        let number = try Self.number(&open, recordLSN: recordLSN)
        // Queued (and handled) before the transaction's row changes, so its place in the stream must sort before
        // theirs: the slot may confirm past a transaction only once its rows are handled too. Row changes are
        // numbered from their WAL positions; a transaction's schema changes by their order among themselves.
        let position = Self.schemaPosition(commitLSN: open.begin.finalLSN.rawValue, index: open.schemaChanges.count)
        open.schemaChanges.append(
            CaptureQueue.CapturedSchema(
                id: ChangeID(origin: region, number: number).description, table: table, statement: statement,
                previous: previous, columns: columns, position: position, commitEnd: .invalid))
        transaction = open
    }

    /// The stream position of a transaction's `index`th schema change: before every row change of the transaction
    /// (row changes are numbered from their WAL positions, far above), after every change of earlier ones.
    static func schemaPosition(commitLSN: UInt64, index: Int) -> StreamPosition {
        StreamPosition(commitLSN: commitLSN, number: Int64(index))
    }

    /// The columns of the relation's rows, each with the JSON encoding of its type (decoded as written, before a
    /// schema change as after it). Names the table never had are a schema change made here that nothing
    /// announced: the table's stream stops (``ShapeGuard``).
    private mutating func columns(of relation: PgOutputRelation, shape: TableShape) throws(AgentError)
        -> [TableShape.Column]
    {
        if let known = resolved[relation.oid] { return known }
        let names = relation.columns.map(\.name)
        guard names == shape.decodedColumnNames || schemas.history[shape.name]?.contains(names) == true else {
            throw AgentError(
                code: .capture,
                message: "table \(shape.name) changed shape here (columns now \(names.joined(separator: ", "))) without "
                    + "the schema change being captured (the event trigger starling_schema_change is missing: it "
                    + "needs a superuser): its stream is stopped. Revert the change here and give it to the hub "
                    + "(starling admin ddl), which replicates it to every region", key: shape.name)
        }
        let byName = Dictionary(shape.columns.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var columns: [TableShape.Column] = []
        columns.reserveCapacity(relation.columns.count)
        for column in relation.columns {
            if let type = schemas.types[column.typeOID] {
                columns.append(
                    TableShape.Column(
                        name: column.name, type: "", encoding: .of(base: type.base, element: type.element),
                        valueType: type.element ?? type.base, isArray: type.element != nil))
            } else if let known = byName[column.name] {
                columns.append(known)
            } else {
                throw AgentError(
                    code: .capture,
                    message: "column \(column.name) of \(shape.name) has a type created after the capture started "
                        + "(oid \(column.typeOID)): capture restarts to learn it", key: shape.name)
            }
        }
        resolved[relation.oid] = columns
        return columns
    }

    /// A tuple as a JSON image; an unchanged TOASTed value is taken from `fallback` (the full old row).
    private static func image(
        _ tuple: PgOutputTuple, columns: [TableShape.Column], fallback: JSONObject?, table: String
    ) throws(AgentError) -> JSONObject {
        guard tuple.count == columns.count else {
            throw AgentError(code: .capture, message: "a decoded row of \(table) has \(tuple.count) values, not \(columns.count)")
        }
        var image: JSONObject = [:]
        image.reserveCapacity(columns.count)
        for (index, column) in columns.enumerated() {
            switch tuple[index] {
            case .null: image[column.name] = .null
            case .text(let text): image[column.name] = try DecodedValue.json(text, column: column)
            case .unchangedToast:
                guard let value = fallback?[column.name] else {
                    throw AgentError(
                        code: .capture, message: "an unchanged TOASTed value of \(table).\(column.name) has no old row")
                }
                image[column.name] = value
            case .binary:
                throw AgentError(code: .capture, message: "the WAL stream sent a binary value (binary mode is off)")
            }
        }
        return image
    }

    /// The key of a row the agent wrote, from the key columns alone (a key value is never an unchanged TOAST:
    /// it is in the index). Nil for a tuple without them (an old tuple of a key-only replica identity whose
    /// key did not change: the new tuple has it).
    private static func key(of tuple: PgOutputTuple, relation: PgOutputRelation, shape: TableShape) throws(AgentError)
        -> JSONObject?
    {
        var key: JSONObject = [:]
        for name in shape.key {
            guard let index = relation.columns.firstIndex(where: { $0.name == name }), index < tuple.count,
                let column = shape.columns.first(where: { $0.name == name })
            else {
                throw AgentError(code: .capture, message: "a decoded row of \(shape.name) lacks key column \(name)")
            }
            switch tuple[index] {
            case .text(let text): key[name] = try DecodedValue.json(text, column: column)
            case .null, .unchangedToast: return nil
            case .binary:
                throw AgentError(code: .capture, message: "the WAL stream sent a binary value (binary mode is off)")
            }
        }
        return key
    }

    private static func key(_ image: JSONObject, shape: TableShape) -> JSONObject {
        var key: JSONObject = [:]
        for column in shape.key { key[column] = image[column] ?? .null }
        return key
    }
}
