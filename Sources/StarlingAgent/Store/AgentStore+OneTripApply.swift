import StarlingCore
import StarlingPostgres

/// A pulled page applied in one round trip (README "Apply"). The full apply reads before it writes: the cursor
/// statement (with what the catalog says), then the locks and the shape check, then the tables' batches, then the
/// COMMIT, four round trips in which each of the seven receivers of a change and its database wake up again and
/// again. When the agent knows what those reads will find — the catalog read at the current key (``CatalogCache``),
/// under WAL capture with the versions in memory, no spilled entries, no parallel parts — it sends the whole
/// transaction at once, built from what it knows, with a check at each place the full apply would have decided
/// something: the cursor is where the page starts, the catalog key is the one it read (read after the locks) and no
/// entry is held, each table's batch wrote every row. A failing check raises (`starling.refuse_unless`,
/// Migrations/agent/0013), the server skips the rest of the pipeline with its COMMIT, and the page is applied the
/// full way, which decides as it always did (a stale page, a changed shape, a row that fails).
extension AgentStore {
    /// What ``applyInOneTrip(_:connection:)`` applies: ``apply(_:after:next:wal:spill:clearsParts:connection:)``'s
    /// arguments and what it derived from them.
    struct OneTripPage {
        var entries: [LogEntry]
        var after: Int64
        var next: Int64
        var maxHLC: Int64
        var batchTables: [String]
        var marker: CaptureLedger.Marker
        /// The marker with the apply's promise (``CaptureLedger/Marker/deferredThrough``), written instead of
        /// `marker` when no batch table may write other rows.
        var promised: CaptureLedger.Marker
        var pendingKeys: Set<TableKey>
        var versions: [TableKey: Int64]
        /// `entries`' keys in order (nil: made here).
        var keys: [TableKey]? = nil
    }

    /// Applies `page` in one round trip, or returns nil when what it needs is not known (the catalog not read at a
    /// recent key for these tables, an entry of a stopped table). Throws `SL001` when a check failed on the server, and
    /// any statement's error (a table dropped since the catalog was read): nothing was written.
    func applyInOneTrip(_ page: OneTripPage, connection: PostgresConnection) throws -> ApplySummary? {
        guard let (key, catalog) = catalog.applyCatalog(for: page.batchTables), let drift = self.catalog.drift(at: key)
        else { return nil }
        var summary = ApplySummary()
        summary.inOneTrip = true
        summary.stoppedTables = drift
        // Sorted in place, as ``takePending(_:pendingKeys:)`` and ``sortPulled(_:drift:versions:renames:summary:)``
        // sort (same decisions), each entry's key made once and no entry copied on the way: a pulled page's
        // entries were copied three times here, a tenth of an agent's CPU in W1 R=8 with their releases.
        let entries = page.entries
        let keys = page.keys.flatMap { $0.count == entries.count ? $0 : nil } ?? entries.map(\.tableKey)
        var deferred: [LogEntry] = []
        var images: [Image] = []
        images.reserveCapacity(entries.count)
        for index in entries.indices {
            let key = keys[index]
            if !page.pendingKeys.isEmpty, page.pendingKeys.contains(key) {
                deferred.append(entries[index])
                continue
            }
            switch pulledDecision(
                entries[index], key: key, drift: drift, versions: page.versions, renames: catalog.renames)
            {
            case .own: summary.skippedOwn += 1
            case .superseded: summary.skippedVersion += 1
            case .held: return nil
            case .apply(nil): images.append(Image(pulled: entries[index], key: key))
            case .apply(let renamed?): images.append(Image(pulled: renamed, key: key))
            }
        }
        summary.skippedPending = deferred.count

        // The locks first: the cursor statement then reads the catalog key once, after them (no DDL commits on these
        // tables before this transaction does).
        var statements = try catalog.lockable.isEmpty
            ? [] : [PostgresStatement(Self.lockStatement(catalog.lockable), name: "agent.oneTrip.lock", prepared: true)]
        let groups = Self.groupByTable(images, tables: catalog.tables)
        summary.skippedVersion += groups.notInstalled.count
        let batches = try groups.tables.map { table, indices in
            (table: table, count: indices.count, batch: try Self.walBatch(images, indices: indices, table: table))
        }
        let promises = page.promised.deferredThrough != nil && !catalog.sideWrites
        // With its promise the transaction writes the batches' keys and nothing else: it lists them (``WrittenKeys``).
        let written = promises && writtenKeys.isOn
            ? WrittenKeys.content(batches.lazy.flatMap { $0.batch.newest.lazy.map { images[$0].tableKey } }) : nil
        statements.append(cursorStatement(page, key: key, marker: promises ? page.promised : page.marker, written: written))
        if !deferred.isEmpty { statements.append(Self.deferring(deferred)) }
        for (table, count, batch) in batches {
            if batch.locksFirst { statements.append(Self.lockingRows(of: table, images: images, indices: batch.newest)) }
            if let upserts = upsertStatements(batch, images: images, table: table, key: key, connection: connection) {
                statements += upserts.statements
                if upserts.byArrays { summary.upsertedByArrays += count }
                summary.applied += count
                continue
            }
            for call in batch.calls {
                statements.append(
                    PostgresStatement(
                        "SELECT starling.refuse_unless(error_state IS NULL, $3) AS ok FROM \(batch.function)($1::jsonb, $2::jsonb)",
                        call.documents(images) + [.text("a row of \(table) failed")], name: "agent.apply.walBatch", prepared: true))
            }
            summary.applied += count
        }
        let (_, then) = try connection.transaction(
            settings: oneTripSettings, pipelining: statements, thenQuery: Self.insertPositionSQL)
        guard let then else { throw PostgresError(code: .queryFailed, message: "no WAL position after COMMIT") }
        summary.position = try Self.insertPosition(then)
        return summary
    }

    /// `batch` as the table's upsert statements when its calls are upserts only (a delete's join is left to the
    /// function, whose planner settings keep it an index probe), made from the table's shape read after the catalog
    /// key was `key` (kept, ``CatalogCache/upsert(for:at:)``): one statement a call with one array per column
    /// (``TableSQL/upsertArraysSQL()``) when the table's columns and the images' values allow, else, for a batch of one
    /// call, with the images' document (``TableSQL/upsertRowsSQL()``); nil when neither applies or the shape cannot be
    /// read now (the function's calls are sent, and decide).
    private func upsertStatements(
        _ batch: WALBatch, images: [Image], table: String, key: String, connection: PostgresConnection
    ) -> (statements: [PostgresStatement], byArrays: Bool)? {
        guard batch.calls.allSatisfy({ $0.deletes.isEmpty && !$0.upserts.isEmpty }) else { return nil }
        guard let upserts = catalog.upsert(for: table, at: key) ?? readUpserts(table: table, key: key, connection: connection)
        else { return nil }
        if let arrays = upserts.arrays {
            let statements = batch.calls.map { call in
                Self.columnArrays(images, indices: call.upserts, columns: arrays.columns).map {
                    PostgresStatement(arrays.sql, $0, name: "agent.apply.upsertArrays", prepared: true)
                }
            }
            if statements.allSatisfy({ $0 != nil }) { return (statements.compactMap { $0 }, true) }
        }
        guard batch.calls.count == 1, let call = batch.calls.first else { return nil }
        return ([PostgresStatement(upserts.rows, [call.documents(images)[0]], name: "agent.apply.upsert", prepared: true)], false)
    }

    /// The rows of `images` at `indices` as one array literal per column of `columns` (``ColumnArrayWriter``); nil
    /// when a value is not a scalar.
    static func columnArrays(_ images: [Image], indices: [Int], columns: [String]) -> [PostgresValue]? {
        var writer = ColumnArrayWriter(columns: columns, rows: indices.count)
        for index in indices {
            if let json = images[index].rowJSON {
                guard writer.append(json: json) else { return nil }
            } else {
                guard let row = images[index].row, writer.append(row: row) else { return nil }
            }
        }
        return writer.finish().map { .text($0) }
    }

    /// `table`'s upsert statements made from its shape read now, kept for `key` when the key is still `key`; nil when
    /// either read fails or the key moved. The key first, then the shape: a DDL between them changes the key, and the
    /// apply's check refuses it.
    private func readUpserts(table: String, key: String, connection: PostgresConnection) -> TableUpserts? {
        guard
            let read = try? connection.query(CatalogCache.keySQL, name: "agent.shape.key", prepared: true),
            let readKey = try? read.first?.optionalString("key"), readKey == key,
            let upserts = try? TableUpserts(TableSQL(shape: TableShape.load(table: table, connection: connection)))
        else { return nil }
        catalog.keep(upsert: upserts, for: table, at: key)
        return upserts
    }

    /// The cursor's move, as the full apply's cursor statement makes it, refused unless the cursor is where the page
    /// starts, the catalog key is `key` and no entry is held (read after the locks); it writes `marker`, and the
    /// ``WrittenKeys`` message `written` when there is one, into the WAL before any row.
    private func cursorStatement(
        _ page: OneTripPage, key: String, marker: CaptureLedger.Marker, written: String?
    ) -> PostgresStatement {
        PostgresStatement(
            """
            WITH k AS (SELECT \(CatalogCache.keyExpression) AS key, EXISTS (SELECT 1 FROM starling.held_entries) AS held),
                 u AS (UPDATE starling.state SET \(Self.cursorMove(next: "$1", hlc: "$2", history: ("$4", "$5")))
                       WHERE cursor = $3 RETURNING 1)
            SELECT starling.refuse_unless(EXISTS (SELECT 1 FROM u), 'the cursor is not where the page starts')
                   AND starling.refuse_unless(k.key = $6 AND NOT k.held, 'the catalog changed or entries are held')
                   AS ok,
                   pg_logical_emit_message(true, $7, $8)::text AS marker,
                   CASE WHEN $9::text IS NOT NULL THEN pg_logical_emit_message(true, $10, $9)::text END AS written
            FROM k
            """,
            [.int64(page.next), .int64(page.maxHLC), .int64(page.after)] + historyParameters + [
                .text(key), .text(CaptureLedger.Marker.prefix), .text(marker.text), written.map { .text($0) } ?? .null,
                .text(WrittenKeys.prefix),
            ], name: "agent.apply.oneTrip", prepared: true)
    }
}
