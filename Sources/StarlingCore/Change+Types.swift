extension Change {
    /// Fails unless every value of the key and both images fits its column's registered type (``ColumnTypeCheck``);
    /// `types` maps column names to their `format_type` text. Columns missing from `types` are
    /// ``check(columns:)``'s to refuse.
    public func check(types: [String: String]) throws(CoreError) {
        for (name, image) in [("key", key), ("before", before), ("after", after)] {
            guard let image else { continue }
            for column in JSONSerializer.sortedNames(image) {
                guard let type = types[column], let value = image[column],
                    let expected = ColumnTypeCheck.problem(type: type, value: value)
                else { continue }
                throw CoreError(
                    code: .invalidChange,
                    message: "change \(id): column \"\(column)\" of \(table) is \(type): the value \(Self.shortText(value)) "
                        + "is not \(expected)",
                    field: "\(name).\(column)")
            }
        }
    }

    /// A value for an error message, cut to 60 bytes.
    private static func shortText(_ value: JSONValue) -> String {
        let text = String(decoding: value.serialized(), as: UTF8.self)
        return text.utf8.count <= 60 ? text : String(decoding: Array(text.utf8.prefix(60)), as: UTF8.self) + "…"
    }
}
