extension Change {
    /// The same change with its images read under the shape in force (``ImageRules``): a region pushes what it
    /// captured before it applied a schema change. Key columns never change (``SchemaChange/applied(to:)``), so
    /// the key and the change's validity stay as they are.
    public func conformed(to rules: ImageRules, columns: Set<String>) -> Change {
        guard !rules.isEmpty else { return self }
        let before = self.before.map { rules.apply(to: $0, columns: columns) }
        let after = self.after.map { rules.apply(to: $0, columns: columns) }
        guard before != self.before || after != self.after else { return self }
        return Change(copying: self, before: .some(before), after: .some(after))
    }
}
