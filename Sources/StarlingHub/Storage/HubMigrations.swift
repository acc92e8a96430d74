public import StarlingPostgres

/// The hub's schema migrations: the files of `Migrations/hub` (the one source, which operators read), embedded in
/// the binary by SwiftPM (`embedInCode`, listed in Package.swift) so an installed `starling` needs no files beside
/// it.
///
/// To add a migration: add `Migrations/hub/NNNN_name.sql`, list it in Package.swift's `hubMigrations` and append
/// it here. `HubMigrationsTests` fails when a file of the folder is not embedded here, in order.
public enum HubMigrations {
    /// The schema holding the hub's tables and its `schema_migrations`.
    public static let schema = "starling_hub"

    /// Every migration, ascending. SwiftPM names each resource after its file, a leading digit turned into `_`.
    public static let all: [PostgresMigration] = [
        PostgresMigration(embeddedFile: "0001_init.sql", PackageResources._001_init_sql),
        PostgresMigration(embeddedFile: "0002_dead_letters.sql", PackageResources._002_dead_letters_sql),
        PostgresMigration(embeddedFile: "0003_partitioned_log.sql", PackageResources._003_partitioned_log_sql),
        PostgresMigration(embeddedFile: "0004_reconcile.sql", PackageResources._004_reconcile_sql),
        PostgresMigration(embeddedFile: "0005_c_collation.sql", PackageResources._005_c_collation_sql),
        PostgresMigration(embeddedFile: "0006_origin_marks.sql", PackageResources._006_origin_marks_sql),
        PostgresMigration(embeddedFile: "0007_staged_chunks.sql", PackageResources._007_staged_chunks_sql),
        PostgresMigration(embeddedFile: "0008_log_terms.sql", PackageResources._008_log_terms_sql),
        PostgresMigration(embeddedFile: "0009_schema_changes.sql", PackageResources._009_schema_changes_sql),
    ]
}
