import StarlingCore

extension HubSettings {
    /// Most delta columns per table: a counter table has a handful; the bound keeps a typo'd list short.
    public static let maxDeltaColumns = 64
}

extension HubConfiguration {
    /// Checks a table's `delta:` list by name only: the column types are known once an agent registers the
    /// table, and ``HubRegistry`` refuses a wrong type then (the hub starts before any region has spoken, so
    /// refusing at load would need the types written twice, in hub.yaml and in the database).
    static func validateDeltaColumns(_ names: [String], key: String) throws(HubError) -> [String] {
        guard names.count <= HubSettings.maxDeltaColumns else {
            throw HubError(
                code: .invalidConfiguration, message: "at most \(HubSettings.maxDeltaColumns) delta columns", key: key)
        }
        var seen = Set<String>()
        for (index, name) in names.enumerated() {
            guard !name.isEmpty else {
                throw HubError(code: .invalidConfiguration, message: "must not be empty", key: "\(key)[\(index)]")
            }
            guard seen.insert(name).inserted else {
                throw HubError(
                    code: .invalidConfiguration, message: "duplicate delta column \"\(name)\"", key: "\(key)[\(index)]")
            }
        }
        return names
    }
}
