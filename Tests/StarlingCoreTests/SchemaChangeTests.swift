import StarlingCore
import Testing

/// Tests of schema changes as the log carries them: which changes are replicated and which are refused (with the
/// reason), the actions a catalog's before and after give, statements given to the hub, the log form, and
/// images captured before a change read with the names in force.
struct SchemaChangeTests {
    static let items = TableShape(
        name: "public.items",
        columns: [
            .init(name: "id", type: "bigint"), .init(name: "label", type: "text"), .init(name: "qty", type: "integer"),
        ],
        key: ["id"])

    private func change(_ actions: [SchemaChange.Action]) -> SchemaChange {
        SchemaChange(table: "public.items", actions: actions, statement: "ALTER TABLE items …")
    }

    private func refusal(_ actions: [SchemaChange.Action]) -> String? {
        do {
            _ = try change(actions).applied(to: Self.items)
            return nil
        } catch {
            return error.message
        }
    }

    // Proves each supported action gives the shape PostgreSQL would, in order, the key unchanged.
    @Test func appliesSupportedActions() throws {
        let shape = try change([
            .addColumn(name: "note", type: "text", isNotNull: false, defaultSQL: nil),
            .addColumn(name: "stock", type: "integer", isNotNull: true, defaultSQL: "0"),
            .renameColumn(from: "label", to: "title"),
            .alterType(name: "qty", type: "bigint"),
            .dropColumn(name: "note"),
        ]).applied(to: Self.items)
        #expect(shape.columns.map(\.name) == ["id", "title", "qty", "stock"])
        #expect(shape.columns.map(\.type) == ["bigint", "text", "bigint", "integer"])
        #expect(shape.key == ["id"])
    }

    // Proves every refused change says why, naming the column (a region could not apply it, or images would change).
    @Test func refusesWhatCannotReplicate() {
        let cases: [([SchemaChange.Action], String)] = [
            ([], "changes no column"),
            ([.dropColumn(name: "id")], "key column id"),
            ([.renameColumn(from: "id", to: "ident")], "key column id"),
            ([.alterType(name: "id", type: "numeric")], "key column id"),
            ([.dropColumn(name: "missing")], "column missing does not exist"),
            ([.addColumn(name: "label", type: "text", isNotNull: false, defaultSQL: nil)], "column label exists"),
            ([.renameColumn(from: "label", to: "qty")], "column qty exists"),
            ([.addColumn(name: "at", type: "timestamp with time zone", isNotNull: false, defaultSQL: "now()")],
             "not a constant"),
            ([.addColumn(name: "n", type: "integer", isNotNull: true, defaultSQL: nil)], "NOT NULL without a DEFAULT"),
            ([.alterType(name: "qty", type: "smallint")], "from integer to smallint"),
            ([.alterType(name: "label", type: "integer")], "from text to integer"),
        ]
        for (actions, reason) in cases {
            let message = refusal(actions)
            #expect(message?.contains(reason) == true, "\(actions): \(message ?? "accepted")")
            #expect(message?.hasPrefix("schema change of public.items refused") == true)
        }
        let single = TableShape(name: "public.items", columns: [.init(name: "id", type: "bigint"), .init(name: "v", type: "text")], key: ["id"])
        #expect(throws: CoreError.self) {
            _ = try change([.dropColumn(name: "v"), .dropColumn(name: "id")]).applied(to: single)
        }
    }

    // Proves the widening rule: what keeps every value and its JSON image, and nothing else.
    @Test func wideningTypes() {
        let widening: [(String, String)] = [
            ("smallint", "integer"), ("smallint", "bigint"), ("integer", "bigint"), ("integer", "numeric"),
            ("bigint", "numeric"), ("bigint", "numeric(19,0)"), ("integer", "numeric(12,2)"),
            ("character varying(10)", "character varying(20)"), ("character varying(10)", "text"),
            ("character varying(10)", "character varying"), ("character varying", "text"),
            ("numeric(10,2)", "numeric(12,2)"), ("numeric(10,2)", "numeric(12,4)"), ("numeric(10,2)", "numeric"),
            ("text", "text"),
        ]
        for (from, to) in widening { #expect(SchemaChange.isWidening(from: from, to: to), "\(from) → \(to)") }
        let narrowing: [(String, String)] = [
            ("bigint", "integer"), ("integer", "smallint"), ("double precision", "real"), ("integer", "real"),
            ("real", "double precision"),
            ("character varying(20)", "character varying(10)"), ("text", "character varying(10)"),
            ("numeric(12,2)", "numeric(10,2)"), ("numeric(10,2)", "numeric(10,4)"), ("bigint", "numeric(10,0)"),
            ("numeric", "numeric(30,10)"), ("text", "integer"), ("timestamp without time zone", "timestamp with time zone"),
            ("integer", "text"),
        ]
        for (from, to) in narrowing { #expect(!SchemaChange.isWidening(from: from, to: to), "\(from) → \(to)") }
    }

    // Proves type names are what format_type writes and nothing else can pass as one (a region's pushed types and
    // defaults' casts are built into statements).
    @Test func typeNames() {
        for name in ["integer", "character varying(20)", "numeric(12,2)", "timestamp(3) with time zone", "text[]",
            "integer[3]", "\"My Type\"", "public.status", "\"odd\"\"name\"[]", "double precision", "bit varying(5)"]
        {
            #expect(SchemaChange.isTypeName(name), "\(name)")
        }
        for text in ["", "text, (select 1)", "int; drop table x", "numeric(select)", "text)", "text(", "\"open",
            "int -- x", "x'y", "text::int", "(1)"]
        {
            #expect(!SchemaChange.isTypeName(text), "\(text)")
        }
        #expect(!SchemaChange.isConstant("''::text, (select string_agg(token, ',') from starling_hub.regions)"))
        let injected = SchemaChange(
            table: "public.items",
            actions: [.addColumn(name: "x", type: "text DEFAULT now()", isNotNull: false, defaultSQL: nil)], statement: "")
        #expect(throws: CoreError.self) { _ = try injected.applied(to: Self.items) }
        let index = SchemaChange(table: "public.items", actions: [.index(statement: "DROP TABLE x")], statement: "")
        #expect(throws: CoreError.self) { try index.checkCapturedInRegion() }
    }

    // Proves which defaults count as constants (as pg_get_expr writes them) and which do not.
    @Test func constantDefaults() {
        for constant in ["0", "-1", "(-1)", "3.25", "1e3", "'x'::text", "'it''s'::text", "true", "false", "NULL",
            "'{}'::jsonb", "0::numeric(10,2)", "'2026-01-01'::date", "'a'::character varying"]
        {
            #expect(SchemaChange.isConstant(constant), "\(constant)")
        }
        #expect(SchemaChange.constantLiteral("'it''s'::text") == "'it''s'")
        #expect(SchemaChange.constantLiteral("(-1)") == "-1")
        #expect(SchemaChange.constantLiteral("0::numeric(10,2)") == "0")
        #expect(SchemaChange.constantLiteral("'open'::public.status") == "'open'")
        #expect(SchemaChange.constantLiteral("NULL::text") == "NULL")
        #expect(SchemaChange.constantLiteral("now()") == nil)
        for expression in ["now()", "nextval('items_id_seq'::regclass)", "gen_random_uuid()", "random()",
            "CURRENT_TIMESTAMP", "'x'::text || now()", "('a'::text || 'b'::text)", "(1 + 1)", "'open", "x"]
        {
            #expect(!SchemaChange.isConstant(expression), "\(expression)")
        }
    }

    // Proves a catalog's before and after give the actions a region runs: columns matched by number, so a rename
    // is a rename (not drop + add) and a type change keeps its column.
    @Test func actionsFromCatalogs() {
        func column(_ number: Int64, _ name: String, _ type: String, notNull: Bool = false, default d: String? = nil)
            -> SchemaChange.CatalogColumn
        {
            .init(number: number, name: name, type: type, isNotNull: notNull, defaultSQL: d)
        }
        let before = [column(1, "id", "bigint"), column(2, "label", "text"), column(3, "qty", "integer")]
        let after = [
            column(1, "id", "bigint"), column(2, "title", "text"), column(4, "note", "text"),
            column(5, "stock", "integer", notNull: true, default: "0"),
        ]
        #expect(
            SchemaChange.actions(from: before, to: after) == [
                .renameColumn(from: "label", to: "title"), .dropColumn(name: "qty"),
                .addColumn(name: "note", type: "text", isNotNull: false, defaultSQL: nil),
                .addColumn(name: "stock", type: "integer", isNotNull: true, defaultSQL: "0"),
            ])
        #expect(
            SchemaChange.actions(from: before, to: [column(1, "id", "bigint"), column(2, "label", "text"), column(3, "qty", "bigint")])
                == [.alterType(name: "qty", type: "bigint")])
        #expect(SchemaChange.actions(from: before, to: before).isEmpty)
    }

    // Proves the wire form round-trips and the log entry form carries the shape and version.
    @Test func wireAndLogForms() throws {
        let original = change([
            .addColumn(name: "note", type: "text", isNotNull: false, defaultSQL: "'x'::text"),
            .renameColumn(from: "label", to: "title"), .alterType(name: "qty", type: "bigint"),
            .dropColumn(name: "note"),
        ])
        #expect(try SchemaChange(json: original.json) == original)
        let shape = try original.applied(to: Self.items)
        let entry = LogEntry(
            seq: 7, origin: "hub", id: "hub-schema:1", tx: "hub-schema:1", table: "public.items", op: .update, key: [:],
            row: SchemaEntry(change: original, shape: shape, version: 2).row, hlc: 1, kind: .schema, rewritten: true)
        let decoded = try SchemaEntry(entry: try LogEntry(json: entry.json))
        #expect(decoded.change == original)
        #expect(decoded.shape == shape)
        #expect(decoded.version == 2)
        #expect(throws: CoreError.self) {
            _ = try SchemaChange(json: ["table": "public.items", "actions": [["action": "truncate"]]])
        }
        var notSchema = entry
        notSchema.kind = .change
        #expect(throws: CoreError.self) { _ = try SchemaEntry(entry: notSchema) }
    }

    // Proves the clauses of a statement given to the hub are found, and a statement for another table is refused.
    @Test func statementClauses() throws {
        let table = "public.items"
        #expect(try SchemaStatement.clauses(of: "ALTER TABLE public.items ADD COLUMN note text;", table: table) == "ADD COLUMN note text")
        #expect(try SchemaStatement.clauses(of: "alter table items add column note text", table: table) == "add column note text")
        #expect(
            try SchemaStatement.clauses(of: "ALTER TABLE IF EXISTS ONLY \"public\".\"items\" DROP COLUMN qty", table: table)
                == "DROP COLUMN qty")
        #expect(try SchemaStatement.clauses(of: "  ADD COLUMN note text ", table: table) == "ADD COLUMN note text")
        #expect(try SchemaStatement.clauses(of: "ALTER TABLE db.public.items DROP COLUMN qty", table: table) == "DROP COLUMN qty")
        #expect(throws: CoreError.self) { try SchemaStatement.clauses(of: "ALTER TABLE public.other ADD COLUMN x int", table: table) }
        #expect(throws: CoreError.self) { try SchemaStatement.clauses(of: "ALTER TABLE \"Items\" ADD COLUMN x int", table: table) }
        #expect(throws: CoreError.self) { try SchemaStatement.clauses(of: "ALTER TABLE public.items", table: table) }
        #expect(throws: CoreError.self) { try SchemaStatement.clauses(of: " ; ", table: table) }
    }

    // Proves index statements are recognised and made idempotent and transaction-safe (IF [NOT] EXISTS, no
    // CONCURRENTLY, an unqualified dropped name qualified with the table's schema), and the unsafe ones refused.
    @Test func indexStatements() throws {
        let table = "public.items"
        #expect(
            try SchemaStatement.parse("CREATE UNIQUE INDEX CONCURRENTLY items_label ON public.items (lower(label));", table: table)
                == .index(
                    statement: "CREATE UNIQUE INDEX IF NOT EXISTS items_label ON \"public\".\"items\" (lower(label))",
                    probe: "CREATE UNIQUE INDEX items_label ON TABLE_PROBE (lower(label))"))
        #expect(
            try SchemaStatement.parse("create index if not exists \"Items Qty\" on only items using btree (qty) where qty > 0", table: table)
                == .index(
                    statement: "CREATE INDEX IF NOT EXISTS \"Items Qty\" ON \"public\".\"items\" using btree (qty) where qty > 0",
                    probe: "CREATE INDEX \"Items Qty\" ON TABLE_PROBE using btree (qty) where qty > 0"))
        #expect(
            try SchemaStatement.parse("DROP INDEX CONCURRENTLY IF EXISTS items_label", table: table)
                == .index(statement: "DROP INDEX IF EXISTS \"public\".items_label", probe: nil))
        #expect(
            try SchemaStatement.parse("DROP INDEX app.items_label RESTRICT", table: table)
                == .index(statement: "DROP INDEX IF EXISTS app.items_label", probe: nil))
        #expect(try SchemaStatement.parse("ADD COLUMN note text", table: table) == .alter(clauses: "ADD COLUMN note text"))
        #expect(try SchemaStatement.parse("DROP COLUMN note", table: table) == .alter(clauses: "DROP COLUMN note"))
        for refused in [
            "CREATE INDEX ON items (qty)", "CREATE INDEX i ON other (qty)", "CREATE INDEX i ON items",
            "DROP INDEX i CASCADE", "DROP INDEX a, b", "CREATE TABLE x (id int)",
        ] {
            #expect(throws: CoreError.self, "\(refused)") { try SchemaStatement.parse(refused, table: table) }
        }
        let change = SchemaChange(table: table, actions: [.index(statement: "DROP INDEX IF EXISTS i")], statement: "")
        #expect(try change.applied(to: Self.items) == Self.items)
        #expect(try SchemaChange(json: change.json) == change)
        #expect(ImageRules.of(change, fill: [:], toText: []).isEmpty)
    }

    // Proves an image captured before a rename or a drop is read with the names in force: renamed members move,
    // dropped ones go, a column added since gets its default's image, a widened-to-text column's number becomes
    // text, a column added again under a dropped name is kept; the key is untouched.
    @Test func imagesConformToTheShapeInForce() throws {
        let change = try Change(
            id: "r1:5", tx: "r1:5", table: "public.items", op: .update, key: ["id": 1],
            before: ["id": 1, "label": "a", "old": 1, "gone": true, "n": 7],
            after: ["id": 1, "label": "b", "old": 2, "gone": false, "n": 8], base: 3, hlc: 4)
        let first = ImageRules.of(
            SchemaChange(
                table: "public.items",
                actions: [.renameColumn(from: "label", to: "title"), .dropColumn(name: "old"), .dropColumn(name: "gone"),
                    .alterType(name: "n", type: "bigint")], statement: ""),
            fill: [:], toText: ["n"])
        let second = ImageRules.of(
            SchemaChange(
                table: "public.items",
                actions: [.renameColumn(from: "title", to: "name"),
                    .addColumn(name: "gone", type: "text", isNotNull: false, defaultSQL: nil),
                    .addColumn(name: "stock", type: "integer", isNotNull: true, defaultSQL: "0")], statement: ""),
            fill: ["gone": .null, "stock": 0], toText: [])
        let rules = first.then(second)
        let conformed = change.conformed(to: rules, columns: ["id", "name", "n", "gone", "stock"])
        #expect(conformed.after == ["id": 1, "name": "b", "n": "8", "gone": false, "stock": 0])
        #expect(conformed.before == ["id": 1, "name": "a", "n": "7", "gone": true, "stock": 0])
        #expect(conformed.key == change.key && conformed.id == change.id && conformed.base == 3)
        #expect(change.conformed(to: ImageRules(), columns: []) == change)
        #expect(try ImageRules(json: rules.json) == rules)
        #expect(rules.retired["label"] == .some("name") && rules.retired["old"] == .some(nil) && rules.retired["gone"] == nil)
    }
}
