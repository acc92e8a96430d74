import Logging
import StarlingCore
import StarlingPostgres
import Synchronization

/// Reloads the hub's table list from its configuration file while it runs (SIGHUP in `starling hub`,
/// `POST /v1/admin/reload`, ``Hub/reload()``).
///
/// What is reloadable: `tables` (tables join and leave, policies, `manual_provisional`, `delta` columns) — the
/// set every handler and the sequencer read through ``HubTableSet``. Everything else (listen, TLS, database,
/// tokens, regions, limits, retention, reconcile) is read into objects built at start (the listener, the pool,
/// the auth table), so a changed value there is reported in ``HubReloadOutcome/restartRequired`` and not
/// applied. The new file is read and validated whole first (the same rules as at start, plus delta columns
/// against the registered shapes); any error keeps the running configuration and is thrown, naming the key.
///
/// Thread-safe: the running configuration is behind a `Mutex`; reloads are serialized by a second one taken
/// around the whole reload (so two reloads never interleave their check and their swap).
final class HubReloader: Sendable {
    /// Reads and decodes the configuration file (the CLI's loader); nil when the hub was not started from a
    /// file (then a reload is refused).
    typealias Source = @Sendable () throws(HubError) -> HubConfiguration

    private let source: Source?
    private let running: Mutex<HubConfiguration>
    private let tableSet: HubTableSet
    private let pool: PostgresPool
    private let metrics: HubMetrics
    private let regions: [String]
    private let logger: Logger
    private let busy = Mutex(false)

    init(
        configuration: HubConfiguration, source: Source?, tableSet: HubTableSet, pool: PostgresPool,
        metrics: HubMetrics, regions: [String], logger: Logger
    ) {
        self.source = source
        running = Mutex(configuration)
        self.tableSet = tableSet
        self.pool = pool
        self.metrics = metrics
        self.regions = regions
        self.logger = logger
    }

    /// Reads, validates and applies the file; throws (keeping the running tables) when it is not valid.
    func reload() async throws(HubError) -> HubReloadOutcome {
        guard let source else {
            throw HubError(
                code: .invalidRequest, message: "this hub was not started from a configuration file: nothing to reload")
        }
        guard busy.withLock({ busy in defer { busy = true }; return !busy }) else {
            throw HubError(code: .invalidRequest, message: "a reload is already running; try again")
        }
        defer { busy.withLock { $0 = false } }
        do throws(HubError) {
            let next = try source()
            let settings = try next.validate()
            let shapes: [String: TableShape]
            do throws(any Error) {
                shapes = try await pool.withConnection { try HubStore.loadShapes($0) }
            } catch {
                throw HubError(code: .storageFailed, message: "reading the registered shapes failed: \(error)")
            }
            try Hub.checkDeltaColumns(settings.tables, shapes: shapes)
            let outcome = apply(next, tables: settings.tables)
            logger.info(
                "configuration reloaded",
                metadata: [
                    "reload.added": "\(outcome.added)", "reload.removed": "\(outcome.removed)",
                    "reload.changed": "\(outcome.changed)", "reload.restart_required": "\(outcome.restartRequired)",
                ])
            return outcome
        } catch {
            logger.error(
                "configuration reload refused; the running configuration stays", metadata: ["error": "\(error)"])
            throw error
        }
    }

    /// Swaps in `tables` and records `next`'s tables as running; the rest of `next` is compared only.
    private func apply(_ next: HubConfiguration, tables: [HubSettings.Table]) -> HubReloadOutcome {
        let old = tableSet.current.byName
        let new = Dictionary(tables.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let restart = running.withLock { running in
            let restart = Self.restartRequired(running, next)
            running.tables = next.tables
            return restart
        }
        tableSet.replace(with: tables)
        metrics.prepareDeadLetterCounters(regions: regions, tables: tables.map(\.name))
        return HubReloadOutcome(
            tables: tables.map(\.name), added: tables.map(\.name).filter { old[$0] == nil },
            removed: old.keys.filter { new[$0] == nil }.sorted(),
            changed: tables.filter { table in old[table.name].map { $0 != table } ?? false }.map(\.name),
            restartRequired: restart)
    }

    /// The top-level keys whose values differ between `old` and `new`, other than `tables`.
    static func restartRequired(_ old: HubConfiguration, _ new: HubConfiguration) -> [String] {
        var keys: [String] = []
        if old.listen != new.listen { keys.append("listen") }
        if old.tls != new.tls { keys.append("tls") }
        if old.database != new.database { keys.append("database") }
        if old.adminToken != new.adminToken || old.adminTokenSHA256 != new.adminTokenSHA256
            || old.adminPreviousTokens != new.adminPreviousTokens
        {
            keys.append("admin_token")
        }
        if old.regions != new.regions { keys.append("regions") }
        if old.limits != new.limits { keys.append("limits") }
        if old.retention != new.retention { keys.append("retention") }
        if old.insecure != new.insecure { keys.append("insecure") }
        if old.reconcile != new.reconcile { keys.append("reconcile") }
        return keys
    }
}
