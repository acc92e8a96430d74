public import StarlingPostgres

/// The agent's schema migrations (schema `starling` in each region's database): the files of `Migrations/agent`
/// (the one source, which operators read), embedded in the binary by SwiftPM (`embedInCode`, listed in
/// Package.swift) so an installed `starling` needs no files beside it and never looks for them at run time.
///
/// To add a migration: add `Migrations/agent/NNNN_name.sql`, list it in Package.swift's `agentMigrations` and
/// append it here. `AgentMigrationsTests` fails when a file of the folder is not embedded here, in order.
public enum AgentMigrations {
    /// Every migration, ascending. SwiftPM names each resource after its file, a leading digit turned into `_`.
    public static let all: [PostgresMigration] = [
        PostgresMigration(embeddedFile: "0001_starling_schema.sql", PackageResources._001_starling_schema_sql),
        PostgresMigration(embeddedFile: "0002_bootstrap.sql", PackageResources._002_bootstrap_sql),
        PostgresMigration(embeddedFile: "0003_shape_guard.sql", PackageResources._003_shape_guard_sql),
        PostgresMigration(embeddedFile: "0004_deferred_entries.sql", PackageResources._004_deferred_entries_sql),
        PostgresMigration(embeddedFile: "0005_next_id.sql", PackageResources._005_next_id_sql),
        PostgresMigration(embeddedFile: "0006_wal_capture.sql", PackageResources._006_wal_capture_sql),
        PostgresMigration(embeddedFile: "0007_table_lifecycle.sql", PackageResources._007_table_lifecycle_sql),
        PostgresMigration(embeddedFile: "0008_log_terms.sql", PackageResources._008_log_terms_sql),
        PostgresMigration(embeddedFile: "0009_spilled_entries.sql", PackageResources._009_spilled_entries_sql),
        PostgresMigration(embeddedFile: "0010_schema_changes.sql", PackageResources._010_schema_changes_sql),
        PostgresMigration(embeddedFile: "0011_apply_parts.sql", PackageResources._011_apply_parts_sql),
        PostgresMigration(embeddedFile: "0012_ddl_events.sql", PackageResources._012_ddl_events_sql),
        PostgresMigration(embeddedFile: "0013_apply_refusal.sql", PackageResources._013_apply_refusal_sql),
        PostgresMigration(embeddedFile: "0014_schema_made_here.sql", PackageResources._014_schema_made_here_sql),
        PostgresMigration(embeddedFile: "0015_lock_rows.sql", PackageResources._015_lock_rows_sql),
    ]
}
