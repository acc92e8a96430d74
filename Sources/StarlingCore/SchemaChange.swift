/// A schema change of a synced table as the log carries it (DESIGN.md "Beyond the log", Schemas): the
/// column actions, the statement as the operator gave it, and the shape they lead to. The hub sequences it like
/// a change; every region applies it at its place in the order, so images before it have the old shape and
/// images after it the new one.
///
/// Only changes every region can apply with the same result, and that keep every image of the log readable,
/// are replicated: adding a column (nullable, or with a constant default), dropping, renaming or widening a
/// non-key column, creating or dropping an index. ``applied(to:)`` refuses the others naming why. Pure: no IO.
public struct SchemaChange: Sendable, Hashable {
    /// One column action, in the order the statement gave them.
    public enum Action: Sendable, Hashable {
        /// `ADD COLUMN name type [NOT NULL] [DEFAULT expression]`; `defaultSQL` is PostgreSQL's own text of the
        /// default (`pg_get_expr`), a constant.
        case addColumn(name: String, type: String, isNotNull: Bool, defaultSQL: String?)
        case dropColumn(name: String)
        case renameColumn(from: String, to: String)
        /// `ALTER COLUMN name TYPE type`, a widening (``isWidening(from:to:)``).
        case alterType(name: String, type: String)
        /// `CREATE [UNIQUE] INDEX IF NOT EXISTS name ON table …` or `DROP INDEX IF EXISTS name`, as the hub
        /// canonicalised it (``SchemaStatement``): run as it is by every region; no column changes.
        case index(statement: String)
    }

    public var table: String
    public var actions: [Action]
    /// The statement as given through the admin API or run in a region (for the record; regions run the
    /// canonical statements built from `actions`).
    public var statement: String

    public init(table: String, actions: [Action], statement: String) {
        self.table = table
        self.actions = actions
        self.statement = statement
    }

    /// The shape after the actions, or a refusal naming the table, the column and the reason
    /// (`code` `invalidValue`). A change without actions is refused too: it would change nothing.
    public func applied(to shape: TableShape) throws(CoreError) -> TableShape {
        try validate()
        var columns = shape.columns
        func index(of name: String) throws(CoreError) -> Int {
            guard let index = columns.firstIndex(where: { $0.name == name }) else {
                throw refusal("column \(name) does not exist")
            }
            return index
        }
        func requireNonKey(_ name: String, _ what: String) throws(CoreError) {
            if shape.key.contains(name) {
                throw refusal(
                    "\(what) key column \(name) is not replicated: every image and every head is found by its key; "
                        + "keep key columns as they are")
            }
        }
        for action in actions {
            switch action {
            case .addColumn(let name, let type, _, _):
                guard !columns.contains(where: { $0.name == name }) else { throw refusal("column \(name) exists already") }
                columns.append(TableShape.Column(name: name, type: type))
            case .dropColumn(let name):
                try requireNonKey(name, "dropping")
                columns.remove(at: try index(of: name))
            case .renameColumn(let from, let to):
                try requireNonKey(from, "renaming")
                guard !columns.contains(where: { $0.name == to }) else { throw refusal("column \(to) exists already") }
                columns[try index(of: from)].name = to
            case .alterType(let name, let type):
                try requireNonKey(name, "changing the type of")
                let at = try index(of: name)
                guard Self.isWidening(from: columns[at].type, to: type) else {
                    throw refusal(
                        "changing column \(name) from \(columns[at].type) to \(type) could change or lose values; "
                            + "only widening type changes are replicated (smallint → integer → bigint → numeric, "
                            + "real → double precision, a longer varchar or text, a wider numeric)")
                }
                columns[at].type = type
            case .index:
                continue
            }
        }
        guard !columns.isEmpty else { throw refusal("the table would have no column left") }
        return TableShape(name: shape.name, columns: columns, key: shape.key)
    }

    /// The rules of a change whatever the shape it applies to: some action, type names only, constant defaults,
    /// a NOT NULL column with a default. (``applied(to:)`` checks them first.)
    public func validate() throws(CoreError) {
        guard !actions.isEmpty else { throw refusal("the statement changes no column (nothing to replicate)") }
        for action in actions {
            switch action {
            case .addColumn(let name, let type, let isNotNull, let defaultSQL):
                guard Self.isTypeName(type) else { throw refusal("\(type) is not a type name") }
                if let defaultSQL, !Self.isConstant(defaultSQL) {
                    throw refusal(
                        "the default of new column \(name) (\(defaultSQL)) is not a constant: each region would fill its "
                            + "rows with different values. Add the column without a default or with a constant one, "
                            + "then fill it with an UPDATE, which replicates")
                }
                if isNotNull && defaultSQL == nil {
                    throw refusal("new column \(name) is NOT NULL without a DEFAULT: existing rows would have no value")
                }
            case .alterType(_, let type):
                guard Self.isTypeName(type) else { throw refusal("\(type) is not a type name") }
            case .dropColumn, .renameColumn, .index:
                continue
            }
        }
    }

    /// What a region may push as a schema change it captured: column actions only (an index change is given to the
    /// hub by an operator; the statement text of one would run as it is in every region).
    public func checkCapturedInRegion() throws(CoreError) {
        for case .index in actions {
            throw refusal("an index change is not taken from a region: give it to the hub (starling admin ddl)")
        }
    }

    private func refusal(_ reason: String) -> CoreError {
        CoreError(code: .invalidValue, message: "schema change of \(table) refused: \(reason)", field: "statement")
    }

    /// The actions that turn `old` into `new`, columns matched by their position number (`attnum`, which a rename
    /// or a type change keeps and an added column gets anew): the form a region's catalog gives before and after
    /// a statement. Defaults and NOT NULL of added columns come from `new`.
    public static func actions(from old: [CatalogColumn], to new: [CatalogColumn]) -> [Action] {
        let newByNumber = Dictionary(new.map { ($0.number, $0) }, uniquingKeysWith: { first, _ in first })
        let oldNumbers = Set(old.map(\.number))
        var actions: [Action] = []
        for column in old {
            guard let now = newByNumber[column.number] else {
                actions.append(.dropColumn(name: column.name))
                continue
            }
            if now.name != column.name { actions.append(.renameColumn(from: column.name, to: now.name)) }
            if now.type != column.type { actions.append(.alterType(name: now.name, type: now.type)) }
        }
        for column in new where !oldNumbers.contains(column.number) {
            actions.append(
                .addColumn(name: column.name, type: column.type, isNotNull: column.isNotNull, defaultSQL: column.defaultSQL))
        }
        return actions
    }

    /// A column as a catalog describes it: what ``actions(from:to:)`` compares.
    public struct CatalogColumn: Sendable, Hashable {
        /// `attnum`.
        public var number: Int64
        public var name: String
        /// `format_type(atttypid, atttypmod)`.
        public var type: String
        public var isNotNull: Bool
        /// `pg_get_expr(adbin, adrelid)`, nil without a default.
        public var defaultSQL: String?

        public init(number: Int64, name: String, type: String, isNotNull: Bool, defaultSQL: String?) {
            self.number = number
            self.name = name
            self.type = type
            self.isNotNull = isNotNull
            self.defaultSQL = defaultSQL
        }
    }

    // MARK: - Rules

    /// Whether a default expression is a constant every region evaluates alike: a number, a quoted literal,
    /// `true`/`false`/`NULL`, each possibly with casts (`'x'::text`, `0::numeric(10,2)`), as `pg_get_expr` writes
    /// them. Function calls (`now()`, `nextval(…)`, `gen_random_uuid()`) are not.
    public static func isConstant(_ expression: String) -> Bool { constantLiteral(expression) != nil }

    /// The literal of a constant default without its casts (`'x'`, `-1`, `true`, `NULL`), nil when the expression
    /// is not a constant (``isConstant(_:)``). Written where the column's type decides the literal's (a `CASE`
    /// whose other branch is the column), it needs no type name, so no search path.
    public static func constantLiteral(_ expression: String) -> String? {
        var text = Substring(expression.trimmingSpaces)
        while text.hasPrefix("("), text.hasSuffix(")") { text = text.dropFirst().dropLast() }
        // Strip trailing casts: `::type`, where a type may hold spaces and parentheses but no quote.
        if text.hasPrefix("'") {
            var index = text.index(after: text.startIndex)
            var closed: String.Index?
            while index < text.endIndex {
                if text[index] == "'" {
                    let next = text.index(after: index)
                    if next < text.endIndex, text[next] == "'" {
                        index = text.index(after: next)
                        continue
                    }
                    closed = index
                    break
                }
                index = text.index(after: index)
            }
            guard let closed, Self.isCastTail(text[text.index(after: closed)...]) else { return nil }
            return String(text[...closed])
        }
        let end = text.firstIndex(of: ":") ?? text.endIndex
        let head = text[..<end].trimmingSpaces
        guard Self.isCastTail(text[end...]) else { return nil }
        if ["true", "false", "null"].contains(head.lowercased()) { return head }
        var digits = Substring(head)
        if digits.hasPrefix("-") || digits.hasPrefix("+") { digits = digits.dropFirst() }
        while digits.hasPrefix("("), digits.hasSuffix(")") { digits = digits.dropFirst().dropLast() }
        if digits.hasPrefix("-") { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isNumber || $0 == "." || $0 == "e" || $0 == "E" }),
            digits.first?.isNumber == true
        else { return nil }
        return head
    }

    /// `(::type)*` with no quote, no function call syntax beyond a type's modifiers.
    private static func isCastTail(_ tail: Substring) -> Bool {
        let text = tail.trimmingSpaces
        if text.isEmpty { return true }
        guard text.hasPrefix("::") else { return false }
        return text.dropFirst(2).split(separator: "::", omittingEmptySubsequences: false).allSatisfy {
            isTypeName(String($0))
        }
    }

    /// Whether `text` is a type name as `format_type` writes one, and nothing else: words (letters, digits, `_`,
    /// `$`) or quoted identifiers, dot-qualified, separated by spaces (`double precision`, `timestamp with time
    /// zone`), a modifier list of numbers after a word (`numeric(12,2)`, `timestamp(3) with time zone`) and
    /// array brackets (`text[]`, `integer[3]`). What a region or an admin sends as a type is checked against it
    /// before any statement is built from it: nothing else can ride along.
    public static func isTypeName(_ text: String) -> Bool {
        let characters = Array(text.trimmingSpaces)
        guard let first = characters.first, first.isLetter || first == "_" || first == "\"" else { return false }
        var index = 0
        var isAfterWord = false
        while index < characters.count {
            let character = characters[index]
            if character == "\"" {
                index += 1
                var closed = false
                while index < characters.count {
                    if characters[index] == "\"" {
                        if index + 1 < characters.count, characters[index + 1] == "\"" {
                            index += 2
                            continue
                        }
                        closed = true
                        index += 1
                        break
                    }
                    index += 1
                }
                guard closed else { return false }
                isAfterWord = true
            } else if character.isLetter || character.isNumber || character == "_" || character == "$" {
                index += 1
                isAfterWord = true
            } else if character == " " || character == "." {
                index += 1
                isAfterWord = false
            } else if character == "(" {
                guard isAfterWord || characters[..<index].last == " " else { return false }
                index += 1
                var sawDigit = false
                while index < characters.count, characters[index] != ")" {
                    guard characters[index].isNumber || characters[index] == "," || characters[index] == " " else {
                        return false
                    }
                    sawDigit = sawDigit || characters[index].isNumber
                    index += 1
                }
                guard index < characters.count, sawDigit else { return false }
                index += 1
                isAfterWord = false
            } else if character == "[" {
                index += 1
                while index < characters.count, characters[index].isNumber { index += 1 }
                guard index < characters.count, characters[index] == "]" else { return false }
                index += 1
                isAfterWord = false
            } else {
                return false
            }
        }
        return true
    }

    /// Whether a column of type `old` can become `new` keeping every value and its JSON image readable as the
    /// same value: integer widening, integers to `numeric`, a longer `varchar`, `varchar` to `text`, a `numeric`
    /// with at least as many digits before and after the point. (`real` to `double precision` is not: 0.1 becomes
    /// 0.100000001490116, a different image.)
    public static func isWidening(from old: String, to new: String) -> Bool {
        if old == new { return true }
        let integers = ["smallint", "integer", "bigint"]
        if let from = integers.firstIndex(of: old) {
            if let to = integers.firstIndex(of: new) { return to > from }
            return new == "numeric" || (Self.numeric(new).map { $0.precision - $0.scale >= [5, 10, 19][from] } ?? false)
        }
        if let from = Self.varchar(old) {
            if new == "text" || new == "character varying" { return true }
            if let to = Self.varchar(new), let length = from { return to.map { $0 >= length } ?? true }
            return false
        }
        if old == "character varying" { return new == "text" }
        if let from = Self.numeric(old) {
            if new == "numeric" { return true }
            guard let to = Self.numeric(new) else { return false }
            return to.scale >= from.scale && to.precision - to.scale >= from.precision - from.scale
        }
        return false
    }

    /// `character varying(n)` → `n`; `character varying` → nil length (unbounded); other types → nil.
    private static func varchar(_ type: String) -> Int?? {
        if type == "character varying" { return .some(nil) }
        guard type.hasPrefix("character varying("), type.hasSuffix(")") else { return nil }
        guard let length = Int(type.dropFirst("character varying(".count).dropLast()) else { return nil }
        return .some(length)
    }

    /// `numeric(p,s)` or `numeric(p)` → precision and scale.
    private static func numeric(_ type: String) -> (precision: Int, scale: Int)? {
        guard type.hasPrefix("numeric("), type.hasSuffix(")") else { return nil }
        let parts = type.dropFirst("numeric(".count).dropLast().split(separator: ",")
        guard let precision = parts.first.flatMap({ Int($0.trimmingSpaces) }) else { return nil }
        let scale = parts.count > 1 ? Int(parts[1].trimmingSpaces) : 0
        guard let scale, parts.count <= 2 else { return nil }
        return (precision, scale)
    }

    // MARK: - Wire form

    /// `{"table":…,"statement":…,"actions":[{"action":"add_column","name":…,"type":…,"not_null":…,"default":…},
    /// {"action":"drop_column","name":…},{"action":"rename_column","from":…,"to":…},
    /// {"action":"alter_type","name":…,"type":…}]}`.
    public var json: JSONValue {
        .object([
            "table": .string(table), "statement": .string(statement),
            "actions": .array(actions.map(Self.json)),
        ])
    }

    private static func json(_ action: Action) -> JSONValue {
        switch action {
        case .addColumn(let name, let type, let isNotNull, let defaultSQL):
            .object([
                "action": .string("add_column"), "name": .string(name), "type": .string(type),
                "not_null": .bool(isNotNull), "default": defaultSQL.map(JSONValue.string) ?? .null,
            ])
        case .dropColumn(let name): .object(["action": .string("drop_column"), "name": .string(name)])
        case .renameColumn(let from, let to):
            .object(["action": .string("rename_column"), "from": .string(from), "to": .string(to)])
        case .alterType(let name, let type):
            .object(["action": .string("alter_type"), "name": .string(name), "type": .string(type)])
        case .index(let statement): .object(["action": .string("index"), "statement": .string(statement)])
        }
    }

    public init(json: JSONValue) throws(CoreError) {
        let reader = try JSONObjectReader(json, what: "a schema change", code: .invalidValue)
        guard let list = try reader.value("actions").arrayValue else {
            throw reader.failure("actions", "\"actions\" must be a list")
        }
        var actions: [Action] = []
        for (index, member) in list.enumerated() {
            let item = try JSONObjectReader(member, what: "an action", code: .invalidValue, path: "actions[\(index)]")
            switch try item.string("action") {
            case "add_column":
                actions.append(
                    .addColumn(
                        name: try item.string("name"), type: try item.string("type"),
                        isNotNull: member["not_null"]?.boolValue ?? false, defaultSQL: try item.optionalString("default")))
            case "drop_column": actions.append(.dropColumn(name: try item.string("name")))
            case "rename_column": actions.append(.renameColumn(from: try item.string("from"), to: try item.string("to")))
            case "alter_type": actions.append(.alterType(name: try item.string("name"), type: try item.string("type")))
            case "index": actions.append(.index(statement: try item.string("statement", maxBytes: 65_536)))
            case let other:
                throw item.failure(
                    "action", "unknown action \(other) (add_column, drop_column, rename_column, alter_type or index)")
            }
        }
        self.init(
            table: try reader.string("table"), actions: actions,
            statement: try reader.optionalString("statement") ?? "")
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and newlines.
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
