extension Change {
    /// Fails unless every value of the key and both images fits its column's registered type (``ColumnTypeCheck``);
    /// `types` maps column names to their `format_type` text. Columns missing from `types` are
    /// ``check(columns:)``'s to refuse.
    public func check(types: [String: String]) throws(CoreError) {
        try check(kinds: types.mapValues(ColumnTypeCheck.Kind.init(type:)), types: types)
    }

    /// ``check(types:)`` with each column's ``ColumnTypeCheck/Kind`` worked out beforehand (a shape's, once per
    /// refresh). Members are visited as stored; of several misfits the error names the first by column name, as a
    /// sorted walk would.
    public func check(kinds: [String: ColumnTypeCheck.Kind], types: [String: String]) throws(CoreError) {
        for (name, image) in [("key", key), ("before", before), ("after", after)] {
            guard let image else { continue }
            var misfit: (column: String, expected: String)?
            for (column, value) in image {
                guard let kind = kinds[column], let expected = ColumnTypeCheck.problem(kind: kind, value: value),
                    misfit.map({ column < $0.column }) ?? true
                else { continue }
                misfit = (column, expected)
            }
            guard let misfit, let value = image[misfit.column] else { continue }
            throw CoreError(
                code: .invalidChange,
                message: "change \(id): column \"\(misfit.column)\" of \(table) is \(types[misfit.column] ?? "?"): "
                    + "the value \(Self.shortText(value)) is not \(misfit.expected)",
                field: "\(name).\(misfit.column)")
        }
    }

    /// A value for an error message, cut to 60 bytes.
    private static func shortText(_ value: JSONValue) -> String {
        let text = String(decoding: value.serialized(), as: UTF8.self)
        return text.utf8.count <= 60 ? text : String(decoding: Array(text.utf8.prefix(60)), as: UTF8.self) + "…"
    }
}
