internal import Foundation

extension PostgresMigrator {
    /// Reads migrations from `directory`: every `NNNN_name.sql` file (version = the leading digits).
    /// Files not ending in `.sql` are ignored; a `.sql` file not named that way is an error, so a typo cannot
    /// silently skip a migration. Start-up only: uses Foundation's file APIs.
    public static func loadMigrations(directory: String) throws(PostgresError) -> [PostgresMigration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw PostgresError(code: .migrationFailed, message: "cannot list migrations in \(directory): \(error)")
        }
        var migrations: [PostgresMigration] = []
        for file in names.sorted() where file.hasSuffix(".sql") {
            guard let (version, name) = parseFileName(file) else {
                throw PostgresError(
                    code: .migrationFailed,
                    message: "migration file \(directory)/\(file) is not named NNNN_name.sql")
            }
            let path = directory + "/" + file
            let sql: String
            do {
                sql = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw PostgresError(code: .migrationFailed, message: "cannot read migration \(path): \(error)")
            }
            migrations.append(PostgresMigration(version: version, name: name, sql: sql))
        }
        return migrations
    }

    /// `0003_add_heads.sql` → (3, "add_heads"); nil when the name does not have that shape.
    static func parseFileName(_ file: String) -> (Int, String)? {
        guard file.hasSuffix(".sql") else { return nil }
        let stem = file.dropLast(4)
        guard let underscore = stem.firstIndex(of: "_") else { return nil }
        let digits = stem[..<underscore]
        let name = stem[stem.index(after: underscore)...]
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), !name.isEmpty,
            let version = Int(digits)
        else { return nil }
        return (version, String(name))
    }
}
