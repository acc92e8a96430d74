import StarlingCore
import StarlingPostgres

/// The SQL generated for one synced table: the capture trigger function (AFTER ROW: outbox row) and the
/// apply functions, all in schema `starling`, all built from the table's catalog shape with every
/// identifier quoted and every name literal escaped. Pure: no IO.
///
/// Applies against the application's own writes (DESIGN.md "Row lock first, so the check and the write
/// are atomic against the application's own writes"), without any lock the application has to take:
/// * an existing row: the apply's `SELECT … FOR UPDATE` waits for an application transaction holding it;
///   the outbox check that follows (a new statement, so a new snapshot under read committed) then sees its
///   committed change and skips; an application write after the row lock waits for the apply and is
///   captured on top of it (its `base` is the applied version);
/// * a brand-new key: the application's uncommitted insert is invisible to both, and the apply's upsert
///   waits on its index entry and then overwrites it. So after writing, the apply checks the outbox again
///   (again a new snapshot): a key with a pending change now gets the application's image back from its
///   newest outbox row (deleted when that is a delete), keeps its version and the entry is skipped as
///   pending; the application's change then gets its verdict from the hub as usual.
/// The capture trigger takes no lock, so an application transaction may write any number of rows (the
/// advisory key locks of earlier versions, trigger `starling_lock`, are removed on install). The apply
/// functions run with `lock_timeout` (``applyLockTimeout``): behind a long application transaction they
/// raise `lock_not_available` instead of waiting, and the whole pulled batch is retried later.
///
/// Images are built under fixed settings (function `SET` clauses): `extra_float_digits = 1` (shortest exact
/// floats), `bytea_output = hex`, `DateStyle = ISO, YMD`, `IntervalStyle = postgres`, `TimeZone = UTC`, and
/// `search_path = pg_catalog, pg_temp` (every name below is qualified). The apply functions run with
/// `starling.applying = on`, which makes the capture trigger skip their writes.
struct TableSQL: Sendable {
    let shape: TableShape
    /// Quoted qualified table name.
    let table: String
    /// Quoted `starling."capture_<hash>"`, `"apply_<hash>"`, `"apply_batch_<hash>"`.
    let captureFunction: String
    let applyFunction: String
    let applyBatchFunction: String
    /// Quoted `starling."apply_wal_<hash>"`, `"apply_wal_rows_<hash>"`: WAL capture's (TableSQL+WAL.swift).
    let applyWALFunction: String
    let applyWALRowsFunction: String
    /// Quoted `starling."apply_wal_batch_<hash>"`: WAL capture's batch function of earlier versions (wrapped members),
    /// dropped on install; a drifted table keeps it behind a shim (``TableSQL/walRowsShimSQL()``).
    let applyWALBatchFunction: String
    /// Quoted `starling."lock_<hash>"`: the BEFORE ROW key-lock function of earlier versions, dropped on
    /// install and uninstall.
    let legacyLockFunction: String
    /// The capture trigger's name on the user table.
    static let captureTrigger = "starling_capture"
    /// The TRUNCATE guard's name on the user table.
    static let truncateGuard = "starling_no_truncate"
    /// The key-lock trigger of earlier versions, dropped on install and uninstall.
    static let legacyLockTrigger = "starling_lock"
    /// How long an apply waits for a lock the application holds before the batch gives up and retries.
    static let applyLockTimeout = "2s"

    /// The body delimiter; a table or column name containing it is refused.
    static let dollar = "$starling_fn$"

    init(shape: TableShape) throws {
        self.shape = shape
        guard !shape.name.contains(Self.dollar), !shape.columns.contains(where: { $0.name.contains(Self.dollar) })
        else {
            throw AgentError(
                code: .invalidTable, message: "table or column name contains \(Self.dollar)", key: shape.name)
        }
        table = try PostgresIdentifier.quote(shape.name)
        let suffix = Self.fnv1a(shape.name)
        captureFunction = "starling." + (try PostgresIdentifier.quoteName("capture_" + suffix))
        legacyLockFunction = "starling." + (try PostgresIdentifier.quoteName("lock_" + suffix))
        applyFunction = "starling." + (try PostgresIdentifier.quoteName("apply_" + suffix))
        applyBatchFunction = "starling." + (try PostgresIdentifier.quoteName("apply_batch_" + suffix))
        applyWALFunction = "starling." + (try PostgresIdentifier.quoteName("apply_wal_" + suffix))
        applyWALBatchFunction = "starling." + (try PostgresIdentifier.quoteName("apply_wal_batch_" + suffix))
        applyWALRowsFunction = "starling." + (try PostgresIdentifier.quoteName("apply_wal_rows_" + suffix))
    }

    /// Settings every generated function runs under (see the type's documentation).
    static let settings = """
        SET search_path = pg_catalog, pg_temp
        SET extra_float_digits = 1
        SET bytea_output = 'hex'
        SET DateStyle = 'ISO, YMD'
        SET IntervalStyle = 'postgres'
        SET TimeZone = 'UTC'
        """

    /// Planner settings of the apply functions: index probes and nested loops only. Every statement in them
    /// touches the keys of one pulled batch (at most a few thousand) in tables that may hold millions, so an
    /// index probe per key is always the right plan; but `jsonb_to_recordset` is estimated at 100 rows and the
    /// statistics of `starling.versions` lag behind a bulk load until autoanalyze, and then the planner hashed
    /// the whole versions table for an 8-entry batch (a bitmap scan of 21 000 rows: 20 ms instead of 0.1 ms,
    /// seen with auto_explain in the replication benchmark right after W1). A statement left with no allowed
    /// plan gets a disabled one at a huge cost estimate, above every JIT threshold, and would be compiled with
    /// LLVM on each call (the hub's sequencer lost a quarter of its lookup time that way): `jit` is off. The
    /// apply statements all have index plans today (W1 of the replication benchmark: same rate either way).
    static let applyPlanSettings = """
        SET enable_seqscan = off
        SET enable_bitmapscan = off
        SET enable_hashjoin = off
        SET enable_mergejoin = off
        SET jit = off
        """

    /// What every apply function declares between its signature and its body: PL/pgSQL, the image settings,
    /// `starling.applying` (the capture trigger skips its writes), the lock timeout and the planner settings.
    static let applyFunctionClauses = """
        LANGUAGE plpgsql
        \(settings)
        SET starling.applying = 'on'
        SET lock_timeout = '\(applyLockTimeout)'
        \(applyPlanSettings)
        AS \(dollar)
        """

    /// The start of an apply function's handler for its protected block: a deadlock, serialization failure or
    /// lock timeout is raised again (the whole pulled batch retries); any other error is kept in `error_state`
    /// and `error_message` (the statements after it in the handler say what the function then returns).
    static let applyErrorHandler = """
        EXCEPTION
                    WHEN deadlock_detected OR serialization_failure OR lock_not_available THEN RAISE;
                    WHEN OTHERS THEN
                        GET STACKED DIAGNOSTICS error_state = RETURNED_SQLSTATE, error_message = MESSAGE_TEXT;
        """

    /// The name as an SQL string literal.
    var tableLiteral: String { Self.literal(shape.name) }

    /// `CREATE OR REPLACE FUNCTION` for the AFTER ROW trigger that writes the outbox row(s).
    func captureFunctionSQL() throws -> String {
        func insert(_ op: String, key: String, before: String, after: String) -> String {
            """
            INSERT INTO starling.outbox (tx, table_name, op, key, before, after, base, captured_at)
                    VALUES (v_tx, \(tableLiteral), '\(op)', \(key), \(before), \(after),
                            coalesce((SELECT v.seq FROM starling.versions v
                                      WHERE v.table_name = \(tableLiteral) AND v.key = \(key)), 0), v_at);
            """
        }
        return """
            CREATE OR REPLACE FUNCTION \(captureFunction)() RETURNS trigger LANGUAGE plpgsql
            \(Self.settings)
            AS \(Self.dollar)
            DECLARE
                k_old jsonb;
                k_new jsonb;
                i_old jsonb;
                i_new jsonb;
                v_tx bigint;
                v_at bigint;
            BEGIN
                IF current_setting('starling.applying', true) = 'on' THEN RETURN NULL; END IF;
                v_tx := txid_current();
                v_at := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
                -- Wakes the agent (LISTEN starling_outbox) at commit; repeated ones in a transaction fold into one.
                PERFORM pg_notify('starling_outbox', '');
                IF TG_OP <> 'INSERT' THEN
                    k_old := \(try keyExpression(record: "OLD"));
                    i_old := \(try imageExpression(record: "OLD"));
                END IF;
                IF TG_OP <> 'DELETE' THEN
                    k_new := \(try keyExpression(record: "NEW"));
                    i_new := \(try imageExpression(record: "NEW"));
                END IF;
                IF TG_OP = 'UPDATE' AND k_old = k_new THEN
                    IF i_old = i_new THEN RETURN NULL; END IF;
                    \(insert("update", key: "k_new", before: "i_old", after: "i_new"))
                    RETURN NULL;
                END IF;
                IF k_old IS NOT NULL THEN
                    \(insert("delete", key: "k_old", before: "i_old", after: "NULL"))
                END IF;
                IF k_new IS NOT NULL THEN
                    \(insert("insert", key: "k_new", before: "NULL", after: "i_new"))
                END IF;
                RETURN NULL;
            END
            \(Self.dollar)
            """
    }

    /// The capture trigger on the user table (replaced if present).
    func triggerSQL() throws -> [String] {
        let capture = try PostgresIdentifier.quoteName(Self.captureTrigger)
        return [
            "CREATE OR REPLACE TRIGGER \(capture) AFTER INSERT OR UPDATE OR DELETE ON \(table) "
                + "FOR EACH ROW EXECUTE FUNCTION \(captureFunction)()"
        ]
    }

    /// The statement trigger refusing TRUNCATE on the user table (neither capture sees a TRUNCATE as row
    /// changes, so it would diverge the regions silently): the shared function is in migration 0006.
    func truncateGuardSQL() throws -> String {
        "CREATE OR REPLACE TRIGGER \(try PostgresIdentifier.quoteName(Self.truncateGuard)) BEFORE TRUNCATE ON \(table) "
            + "FOR EACH STATEMENT EXECUTE FUNCTION starling.refuse_truncate()"
    }

    /// Drops the key-lock trigger and function of earlier versions, if present.
    func legacyLockSQL() throws -> [String] {
        [
            "DROP TRIGGER IF EXISTS \(try PostgresIdentifier.quoteName(Self.legacyLockTrigger)) ON \(table)",
            "DROP FUNCTION IF EXISTS \(legacyLockFunction)()",
        ]
    }

    /// `INSERT … ON CONFLICT` writing the image in jsonb expression `image` (an image as captured: json
    /// columns as their exact text, see ColumnEncoding.jsonText, which `jsonb_populate_record` would store
    /// as a JSON string, so they are parsed back from the text). With `from`, one image per row of that
    /// FROM item, filtered and ordered by `tail`.
    func upsertSQL(image: String, from: String? = nil, tail: String = "") throws -> String {
        try upsertSQL(
            image: image, source: "\(from.map { $0 + ", " } ?? "")jsonb_populate_record(NULL::\(table), \(image)) r",
            tail: tail)
    }

    /// `INSERT … ON CONFLICT` writing every row of the jsonb array expression `rows` (row objects, as captured),
    /// ordered by `tail`. One `jsonb_populate_recordset` over the array when no column needs its image (a json column
    /// or a defaulted one, see ``upsertSQL(image:from:tail:)``): 0.76 µs a row against 2.6 µs for each element
    /// taken out of the array as a jsonb value of its own and populated from there (1,000-row documents of the
    /// benchmark's table, PostgreSQL 15, 2026-12-06), which tables that need the image still pay.
    func upsertSQL(rows: String, tail: String) throws -> String {
        guard !shape.columns.contains(where: { !$0.isGenerated && needsImage($0) }) else {
            return try upsertSQL(image: "w.r", from: "jsonb_array_elements(\(rows)) AS w(r)", tail: tail)
        }
        return try upsertSQL(image: "", source: "jsonb_populate_recordset(NULL::\(table), \(rows)) r", tail: tail)
    }

    /// Whether writing `column` reads the image itself, not only its populated record: a json column (its exact
    /// text) or a column whose constant default stands in when the image lacks it.
    func needsImage(_ column: TableShape.Column) -> Bool {
        column.encoding == .jsonText || imageDefault(column) != nil
    }

    /// The constant default written for `column` when an image lacks it: an image written before its region added
    /// the column (a schema change it had not applied yet) gets the column's default, as the ALTER TABLE gave every
    /// row that existed then. Only a constant default (a replicated ADD COLUMN has no other), written without its
    /// casts: the functions run with search_path pg_catalog, where a cast to the application's own type would not
    /// resolve. Never for a key column.
    private func imageDefault(_ column: TableShape.Column) -> String? {
        guard !shape.key.contains(column.name), let defaultSQL = column.defaultSQL else { return nil }
        return SchemaChange.constantLiteral(defaultSQL)
    }

    /// `INSERT … ON CONFLICT` of the records `r` of FROM clause `source`, whose image (for the columns that need it)
    /// is jsonb expression `image`.
    func upsertSQL(image: String, source: String, tail: String) throws -> String {
        let keyColumns = try shape.key.map(PostgresIdentifier.quoteName)
        let writableColumns = shape.columns.filter { !$0.isGenerated }
        let writable = try writableColumns.map { try PostgresIdentifier.quoteName($0.name) }
        let selected = zip(writableColumns, writable).map { column, quoted in
            let value =
                column.encoding == .jsonText ? "(\(image) ->> \(Self.literal(column.name)))::json" : "r.\(quoted)"
            guard let literal = imageDefault(column) else { return value }
            return "CASE WHEN \(image) ? \(Self.literal(column.name)) THEN \(value) ELSE \(literal) END"
        }
        return """
            INSERT INTO \(table) AS t (\(writable.joined(separator: ", "))) OVERRIDING SYSTEM VALUE
                SELECT \(selected.joined(separator: ", "))
                FROM \(source)\(tail)
                ON CONFLICT (\(keyColumns.joined(separator: ", "))) \(try onConflictSQL())
            """
    }

    /// `DO UPDATE SET` of every non-key writable column (`DO NOTHING` when there is none).
    func onConflictSQL() throws -> String {
        let nonKey = try shape.columns.filter { !$0.isGenerated && !shape.key.contains($0.name) }
            .map { try PostgresIdentifier.quoteName($0.name) }
        return nonKey.isEmpty
            ? "DO NOTHING" : "DO UPDATE SET " + nonKey.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
    }

    /// `CREATE OR REPLACE FUNCTION apply(p_key, p_row, p_seq, p_origin) → (status, error_state,
    /// error_message)`. Status: `applied`, `version` (local version ≥ p_seq), `pending` (a local change of
    /// the key waits in the outbox, found before the write or, for an application insert that committed
    /// while the write waited on it, after: then the application's image is restored, see the type's
    /// documentation), `failed` (the write raised; nothing of it remains, the caller records a dead letter).
    /// Deadlocks, serialization failures and lock timeouts are re-raised so the whole batch retries.
    func applyFunctionSQL() throws -> String {
        let keyMatch = try keyMatch(key: "p_key")
        let pendingNewest = """
            SELECT o.op, o.after INTO v_op, v_after FROM starling.outbox o
                        WHERE o.table_name = \(tableLiteral) AND o.key = p_key ORDER BY o.id DESC LIMIT 1
            """
        return """
            CREATE OR REPLACE FUNCTION \(applyFunction)(p_key jsonb, p_row jsonb, p_seq bigint, p_origin text,
                OUT status text, OUT error_state text, OUT error_message text)
            \(Self.applyFunctionClauses)
            DECLARE
                v_seq bigint;
                v_op text;
                v_after jsonb;
            BEGIN
                BEGIN
                    PERFORM 1 FROM \(table) t WHERE \(keyMatch) FOR UPDATE;
                    SELECT v.seq INTO v_seq FROM starling.versions v
                        WHERE v.table_name = \(tableLiteral) AND v.key = p_key;
                    IF v_seq >= p_seq THEN status := 'version'; RETURN; END IF;
                    IF EXISTS (SELECT 1 FROM starling.outbox o WHERE o.table_name = \(tableLiteral) AND o.key = p_key)
                    THEN
                        status := 'pending'; RETURN;
                    END IF;
                    IF p_row IS NULL THEN
                        DELETE FROM \(table) t WHERE \(keyMatch);
                    ELSE
                        \(try upsertSQL(image: "p_row"));
                    END IF;
                    -- A new snapshot: an application insert of the key that committed while the write waited.
                    \(pendingNewest);
                    IF FOUND THEN
                        IF v_op = 'delete' THEN
                            DELETE FROM \(table) t WHERE \(keyMatch);
                        ELSE
                            \(try upsertSQL(image: "v_after"));
                        END IF;
                        status := 'pending';
                        RETURN;
                    END IF;
                \(Self.applyErrorHandler)
                        status := 'failed';
                        RETURN;
                END;
                INSERT INTO starling.versions (table_name, key, seq, origin, last_sync_time)
                    VALUES (\(tableLiteral), p_key, p_seq, p_origin, now())
                    ON CONFLICT (table_name, key) DO UPDATE
                    SET seq = EXCLUDED.seq, origin = EXCLUDED.origin, last_sync_time = EXCLUDED.last_sync_time;
                status := 'applied';
            END
            \(Self.dollar)
            """
    }

    // MARK: - Expressions

    /// The quoted key columns qualified by a table alias, comma-separated: `list("t")` is `t."id", t."region"`.
    var keyList: (String) -> String {
        get throws {
            let keyColumns = try shape.key.map(PostgresIdentifier.quoteName)
            return { alias in keyColumns.map { "\(alias).\($0)" }.joined(separator: ", ") }
        }
    }

    /// `(t.k1, …) = (SELECT r.k1, … FROM jsonb_populate_record(NULL::table, <key>) r)`: the row of alias `t` whose
    /// key is the jsonb key object in expression `key`.
    func keyMatch(key: String) throws -> String {
        let list = try keyList
        return "(\(list("t"))) = (SELECT \(list("r")) FROM jsonb_populate_record(NULL::\(table), \(key)) r)"
    }

    /// `jsonb_build_object('k1', <k1>, …)` over the key columns of `record` (`NEW`/`OLD`).
    func keyExpression(record: String) throws -> String {
        try objectExpression(shape.key.compactMap { name in shape.columns.first { $0.name == name } }, record: record)
    }

    /// The full image of `record`.
    func imageExpression(record: String) throws -> String {
        try objectExpression(shape.columns, record: record)
    }

    /// `jsonb_build_object` takes at most 100 arguments: 50 columns per call, joined with `||`.
    private func objectExpression(_ columns: [TableShape.Column], record: String) throws -> String {
        var parts: [String] = []
        var index = 0
        while index < columns.count {
            let chunk = columns[index..<min(index + 50, columns.count)]
            let pairs = try chunk.map { column in
                Self.literal(column.name) + ", "
                    + Self.valueExpression(record + "." + (try PostgresIdentifier.quoteName(column.name)), column.encoding)
            }
            parts.append("jsonb_build_object(" + pairs.joined(separator: ", ") + ")")
            index += 50
        }
        return parts.isEmpty ? "'{}'::jsonb" : parts.joined(separator: " || ")
    }

    /// The jsonb value of column expression `x` (``ColumnEncoding/jsonSQL(of:)``).
    static func valueExpression(_ x: String, _ encoding: ColumnEncoding) -> String {
        encoding.jsonSQL(of: x)
    }

    /// A standard-conforming SQL string literal (`'` doubled).
    static func literal(_ text: String) -> String {
        "'" + text.replacingAll("'", with: "''") + "'"
    }

    /// 64-bit FNV-1a of the UTF-8 bytes, 16 lowercase hex digits: a stable, short function-name suffix.
    static func fnv1a(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

extension String {
    /// Replaces every occurrence of `target` (a single character here) without Foundation.
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        result.reserveCapacity(utf8.count)
        for character in self {
            if character == target { result += replacement } else { result.append(character) }
        }
        return result
    }
}
