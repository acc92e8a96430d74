import Prometheus
import StarlingCore
import StarlingHTTP2
import StarlingIO
import Synchronization

/// The part this hub process plays against its database: the one **active** sequencer, or a **standby** that
/// waits for the sequencer lock, so a second hub over the same database can take over when the first dies.
///
/// ```
///              start: lock free                       lock poll succeeds + state reloaded
///   (start) ─────────────────────────▶ active ◀──────────────────────────────── standby
///      │                                  │                                        ▲
///      └── start: lock held elsewhere ────┼────────────────────────────────────────┘
///                                         └── lock session lost (fenced) ──────────┘
/// ```
///
/// Why a standby listens: operators and load balancers expect a process that is up to answer. It answers
/// `/healthz` (200, `"role":"standby"`: the process is alive), `/readyz` (503 `standby`: send no traffic here),
/// `/metrics`, `/v1/status`, the dashboard and the OpenAPI document; every other route answers 503 with
/// `{"error":{"code":"standby",…}}` and `retry-after: 1`, which agents take as "try the next hub URL". It writes
/// nothing: the route table (``HubRoute``) refuses writes before they reach a handler, the sequencer refuses to queue
/// while not active, and the background region-status flush runs only while active.
///
/// Takeover time is measured from the lock poll that won the lock to the moment the hub serves writes (lock +
/// reload of next seq, conflict ids, region cursors and table shapes). The time from the old hub's death to the
/// lock being free (Postgres noticing the dead session) and the poll interval come on top; the end-to-end test
/// measures the whole.
///
/// Thread-safe (a mutex around a small state); metric handles are created once.
final class HubRole: Sendable {
    /// The two roles.
    enum Role: String, Sendable {
        case standby, active
    }

    /// What `/v1/status` and the metrics report.
    struct Snapshot: Sendable {
        var role: Role = .standby
        /// Wall-clock microseconds of the last change of role.
        var since: Int64 = 0
        /// Seconds from winning the lock to serving, of the last takeover (nil before the first).
        var lastTakeoverSeconds: Double?
        /// Times this process became active (the first start included).
        var takeovers: Int64 = 0
        /// Times this process lost its lock session and stepped down.
        var fencings: Int64 = 0
    }

    private let state = Mutex(Snapshot())
    private let activeGauge: Gauge
    private let standbyGauge: Gauge
    private let takeoverCounter: Counter
    private let fencedCounter: Counter
    private let takeoverGauge: Gauge
    /// Where the times of role changes are read.
    private let clock: TimeSource

    /// Creates the role metrics in `registry` (standby until ``becameActive(takeoverSeconds:)``).
    init(registry: PrometheusCollectorRegistry, clock: TimeSource) {
        self.clock = clock
        let roleName = HubMetrics.name("hub", "role", "", "1 for the role this hub plays (active or standby).")
        activeGauge = registry.makeGauge(descriptor: roleName, labels: [("role", Role.active.rawValue)])
        standbyGauge = registry.makeGauge(descriptor: roleName, labels: [("role", Role.standby.rawValue)])
        takeoverCounter = registry.makeCounter(
            descriptor: HubMetrics.name("hub", "takeovers", "total", "Times this hub became the active sequencer."))
        fencedCounter = registry.makeCounter(
            descriptor: HubMetrics.name(
                "hub", "fencings", "total", "Times this hub lost its sequencer lock session and stepped down."))
        takeoverGauge = registry.makeGauge(
            descriptor: HubMetrics.name(
                "hub", "takeover", "seconds", "Last takeover: from winning the sequencer lock to serving writes."))
        standbyGauge.set(1.0)
        activeGauge.set(0.0)
        state.withLock { $0.since = clock.wallClockMicros() }
    }

    /// The current role and failover figures.
    var snapshot: Snapshot { state.withLock { $0 } }

    /// True while this hub is the sequencer.
    var isActive: Bool { state.withLock { $0.role == .active } }

    /// Records a takeover (or the first start) that took `takeoverSeconds` from winning the lock to serving.
    func becameActive(takeoverSeconds: Double) {
        state.withLock { state in
            state.role = .active
            state.since = clock.wallClockMicros()
            state.lastTakeoverSeconds = takeoverSeconds
            state.takeovers += 1
        }
        takeoverCounter.increment()
        takeoverGauge.set(takeoverSeconds)
        activeGauge.set(1.0)
        standbyGauge.set(0.0)
    }

    /// Records that the lock session was lost: this hub is a standby again (returns false if it already was).
    @discardableResult
    func fenced() -> Bool {
        let changed = state.withLock { state -> Bool in
            guard state.role == .active else { return false }
            state.role = .standby
            state.since = clock.wallClockMicros()
            state.fencings += 1
            return true
        }
        guard changed else { return false }
        fencedCounter.increment()
        activeGauge.set(0.0)
        standbyGauge.set(1.0)
        return true
    }

    /// Throws the `standby` 503 unless this hub is active.
    func requireActive() throws(HTTPError) {
        guard isActive else { throw Self.standbyError }
    }

    /// The answer of a standby to a route it does not serve.
    static let standbyError = HTTPError(
        503, code: HubError.Code.standby.rawValue,
        "this hub is a standby: another hub holds the sequencer lock; use the active hub",
        headers: ["retry-after": "1"])

    /// The role fields `/v1/status` adds: `role`, `role_since`, `takeovers`, `fencings`, `last_takeover_seconds`.
    var statusFields: JSONObject {
        let snapshot = self.snapshot
        return [
            "role": .string(snapshot.role.rawValue),
            "role_since": .string(HubJSON.iso8601(micros: snapshot.since)),
            "takeovers": .integer(snapshot.takeovers),
            "fencings": .integer(snapshot.fencings),
            "last_takeover_seconds": snapshot.lastTakeoverSeconds.map { .number(HubAPI.decimal($0)) } ?? .null,
        ]
    }
}

extension HubError.Code {
    /// This hub is a standby (or has just stepped down): the request belongs to the active hub.
    public static let standby = HubError.Code(rawValue: "standby")
}
