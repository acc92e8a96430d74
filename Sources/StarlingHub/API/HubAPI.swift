import Logging
import StarlingCore
import StarlingHTTP2
import StarlingIO
import StarlingPostgres

/// The hub's HTTP API (DESIGN.md "Interfaces"): the handlers of the routes ``HubRoute`` declares, one file per
/// resource (`HubAPI+Changes`, `+Tables`, `+Reports`, `+Snapshot`, `+Reconcile`, `+Status`, `+Conflicts`,
/// `+Operator`).
///
/// Handlers receive an admitted ``HubRequest``: the route table has already refused a standby's writes and
/// checked the token. They throw ``HTTPError`` for a refused request and let ``HubError`` and storage errors
/// through; both become the API's JSON error shape in one place (``HubRoute/responseError(_:)``,
/// `HubError+HTTP`). Handlers that touch Postgres are `.async` and go through the read pool or the sequencer,
/// never blocking a loop.
///
/// Owns nothing with a life of its own: the sequencer, pool, shape cache and reconciler belong to ``Hub``.
final class HubAPI: Sendable {
    let settings: HubSettings
    let auth: HubAuth
    let sequencer: Sequencer
    let pool: PostgresPool
    let notifier: CommitNotifier
    /// The newest entries, encoded once: pulls inside its range skip the database.
    let logCache: LogCache
    let activity: RegionActivity
    let metrics: HubMetrics
    /// Active or standby (``HubRole``): reported by `/healthz`, `/readyz` and `/v1/status`.
    let role: HubRole
    /// Log retention: what was pruned (pulls below it get 410 `cursor_pruned`).
    let retention: LogRetention
    /// Registered table shapes, refreshed by the hub's background loop.
    let shapes: ShapeCache
    /// Reconciliation runs (started here or by the schedule, which runs in ``Hub/run()``).
    let reconciler: Reconciler
    /// Reloads the table list (`POST /v1/admin/reload`).
    let reloader: HubReloader
    /// The HTTP server's counters, for `/metrics`.
    let serverCounters: HTTP2ServerCounters
    let logger: Logger
    /// Where handlers read the time (the hub's ``TimeSource``).
    let clock: TimeSource
    /// Staged transactions being completed now (`HubAPI+Chunks`): a re-sent last chunk joins the running one.
    let completions = ChunkCompletions()

    init(
        settings: HubSettings, sequencer: Sequencer, pool: PostgresPool, notifier: CommitNotifier,
        logCache: LogCache, activity: RegionActivity, metrics: HubMetrics, role: HubRole, retention: LogRetention,
        shapes: ShapeCache, reconciler: Reconciler, reloader: HubReloader, serverCounters: HTTP2ServerCounters, clock: TimeSource,
        logger: Logger
    ) {
        self.settings = settings
        self.clock = clock
        self.auth = HubAuth(settings: settings, clock: clock.wallClockMicros)
        self.sequencer = sequencer
        self.pool = pool
        self.notifier = notifier
        self.logCache = logCache
        self.activity = activity
        self.metrics = metrics
        self.role = role
        self.retention = retention
        self.shapes = shapes
        self.reconciler = reconciler
        self.reloader = reloader
        self.serverCounters = serverCounters
        self.logger = logger
    }

    /// Every route of ``HubRoute`` with its handler, behind the table's standby and token checks.
    func makeRouter() -> Router {
        HubRoute.makeRouter(auth: auth, isActive: { [role] in role.isActive }) { route in handler(for: route) }
    }

    /// The handler of each route. Immediate handlers answer from memory on the loop; the rest run as tasks.
    private func handler(for route: HubRoute) -> HubHandler {
        switch route {
        case .dashboard: Self.dashboard()
        case .openAPI: Self.openAPIDocument()
        case .health: .immediate { [role] _ in role.healthResponse() }
        case .ready: .immediate { [role] _ in try role.readyResponse() }
        case .metrics: .async { [self] _ in try await metricsText() }
        case .config: .immediate { [self] in try config($0) }
        case .push: .async { [self] in try await push($0) }
        case .pull: .async { [self] in try await pull($0) }
        case .agentStatus: .immediate { [self] in try agentStatus($0) }
        case .registerTables: .async { [self] in try await register($0) }
        case .deadLetters: .async { [self] in try await deadLetters($0) }
        case .snapshot: .async { [self] in try await snapshot($0) }
        case .adopt: .async { [self] in try await adopt($0) }
        case .reconcileTask: .immediate { [self] in reconcileTask($0) }
        case .reconcileAnswer: .async { [self] in try await reconcileAnswer($0) }
        case .capturedSchema: .async { [self] in try await capturedSchema($0) }
        case .status: .async { [self] _ in try await status() }
        case .conflicts: .async { [self] in try await conflicts($0) }
        case .resolve: .async { [self] in try await resolve($0) }
        case .startReconcile: .async { [self] _ in try await startReconcile() }
        case .reconcileReport: .async { [self] in try await reconcileReport($0) }
        case .rowHistory: .async { [self] in try await rowHistory($0) }
        case .reload: .async { [self] _ in try await reload() }
        case .schemaChange: .async { [self] in try await schemaChange($0) }
        }
    }

    // MARK: - Helpers

    /// A query parameter as an integer in `range` (`fallback` when absent); 400 `invalid_request` otherwise.
    static func integer(_ text: String?, name: String, default fallback: Int64, range: ClosedRange<Int64>)
        throws(HTTPError) -> Int64
    {
        guard let text else { return fallback }
        guard let value = Int64(text), range.contains(value) else {
            throw HTTPError(400, code: "invalid_request", "\(name) must be an integer in \(range), not \"\(text)\"")
        }
        return value
    }

    /// A request body parsed as JSON; 400 `malformed_json` when it is not JSON.
    static func jsonBody(_ body: [UInt8]) throws(HTTPError) -> JSONValue {
        do {
            return try JSONValue(parsing: body)
        } catch {
            throw HTTPError(400, code: "malformed_json", "the body is not valid JSON: \(error.message)")
        }
    }

    /// A JSON number with at most three decimals ("0" for what cannot be one).
    static func decimal(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let scaled = (value * 1000).rounded() / 1000
        let text = String(scaled)
        return text.contains("e") ? "0" : text
    }
}
