import Logging
import StarlingCore
import StarlingHTTP2
import StarlingHub
import StarlingPostgres
import StarlingTestSupport
import Synchronization

/// The real hub for agent tests: ``Hub`` (sequencer, log and heads in Postgres, the HTTP/2 API) in this
/// process on 127.0.0.1 over h2c, reached by agents through `HTTPHubLink` exactly as `starling agent` reaches
/// it. It answers what a double never did: rejected and merged verdicts, 413 for a body over
/// `max_body_bytes`, 410 `cursor_pruned` after retention, 503 `standby` from a second hub on one database.
///
/// Why here and not in StarlingTestSupport: TestSupport sits below every module (Postgres and IO only) and is
/// linked by every test target; importing StarlingHub there would drag the hub into the transport tests and
/// invert the layers. The hub's own tests keep their `HubHarness`; this one adds what agent tests need (a
/// restart on the same port with other limits, two hubs on one database, background work running).
///
/// Regions are ``regionNames`` with tokens `token-<region>` (priority falling with the number), the admin
/// token is `admin-token`. Owns the hub, its background `run()` task and an admin client; ``stop()`` ends all
/// three and must run on every path (``AgentCluster`` does it).
final class InProcessHub: Sendable {
    static let regionNames = ["r1", "r2", "r3", "r4"]
    static let adminToken = "admin-token"

    let hub: Hub
    let configuration: HubConfiguration
    /// The port the hub listens on (a restart reuses it: agents keep their URL).
    let port: Int
    private let admin: HTTP2Client
    private let background: Task<Void, Never>
    /// Set by the first ``stop()``: a client's `shutdown()` must not run twice (its loop is gone after the first).
    private let isStopped = Mutex(false)

    static func token(_ region: String) -> String { "token-\(region)" }

    /// A hub configuration for `database` listening on `port` (0: the kernel picks).
    static func configuration(
        database: String, tables: [HubConfiguration.Table], limits: HubConfiguration.Limits = .init(), port: Int = 0
    ) -> HubConfiguration {
        HubConfiguration(
            listen: "127.0.0.1:\(port)", database: database, adminToken: adminToken,
            regions: regionNames.enumerated().map { index, name in
                HubConfiguration.Region(name: name, token: token(name), priority: 100 - index * 10)
            },
            tables: tables, limits: limits)
    }

    /// Starts a hub with `configuration` (migrations, the sequencer lock or standby, listening) and its
    /// background work (status flushes, failover), as `starling hub` does.
    static func start(_ configuration: HubConfiguration) async throws -> InProcessHub {
        var logger = Logger(label: "test.hub")
        logger.logLevel = .critical
        let hub = try Hub(configuration: configuration, logger: logger)
        try await hub.start()
        let port = Int(hub.localAddress?.port ?? 0)
        let admin: HTTP2Client
        do {
            admin = try HTTP2Client(configuration: HTTP2ClientConfiguration(baseURL: "http://127.0.0.1:\(port)"))
        } catch {
            await hub.shutdown(gracePeriod: .seconds(1))
            throw error
        }
        return InProcessHub(hub: hub, configuration: configuration, port: port, admin: admin)
    }

    private init(hub: Hub, configuration: HubConfiguration, port: Int, admin: HTTP2Client) {
        self.hub = hub
        self.configuration = configuration
        self.port = port
        self.admin = admin
        background = Task { await hub.run() }
    }

    /// `http://127.0.0.1:<port>`, the `hub:` URL of an agent.
    var url: String { "http://127.0.0.1:\(port)" }

    /// Shuts the client and the hub down and waits for its background work to end. Idempotent.
    func stop() async {
        let wasStopped = isStopped.withLock { stopped in
            defer { stopped = true }
            return stopped
        }
        guard !wasStopped else { return }
        admin.shutdown()
        await hub.shutdown(gracePeriod: .seconds(1))
        await background.value
    }

    /// Stops this hub and starts another on the same database and port with `limits`: what an operator does
    /// to raise a limit. Agents keep their URL and reconnect.
    func restarted(limits: HubConfiguration.Limits) async throws -> InProcessHub {
        await stop()
        var configuration = self.configuration
        configuration.listen = "127.0.0.1:\(port)"
        configuration.limits = limits
        return try await Self.start(configuration)
    }

    /// Sends `method path` with `token` (admin by default); returns the status and the parsed body.
    func send(_ method: String, _ path: String, token: String = adminToken, body: JSONValue? = nil) async throws
        -> (status: Int, json: JSONValue)
    {
        var headers: HTTPHeaders = ["content-type": "application/json"]
        headers.add("authorization", "Bearer \(token)")
        let response = try await admin.send(
            HTTPClientRequest(method: method, path: path, headers: headers, body: body?.serialized() ?? []))
        return (response.status, (try? JSONValue(parsing: response.body)) ?? .null)
    }

    /// `region`'s entry of `GET /v1/status` (what an operator's dashboard shows for it).
    func status(of region: String) async throws -> JSONValue {
        let (status, json) = try await send("GET", "/v1/status")
        guard status == 200, let entry = json["regions"]?.arrayValue?.first(where: { $0["name"] == .string(region) })
        else { throw UnexpectedAnswer(what: "GET /v1/status for \(region)", status: status, json: json) }
        return entry
    }

    /// Every recorded conflict (`GET /v1/conflicts?status=all`), oldest first.
    func conflicts() async throws -> [JSONValue] {
        let (status, json) = try await send("GET", "/v1/conflicts?status=all&limit=1000")
        guard status == 200, let list = json["conflicts"]?.arrayValue else {
            throw UnexpectedAnswer(what: "GET /v1/conflicts", status: status, json: json)
        }
        return list
    }

    /// Pushes wire changes as `region` (`POST /v1/changes`); returns the verdicts.
    func push(_ region: String, _ changes: [JSONValue]) async throws -> [JSONValue] {
        let (status, json) = try await send(
            "POST", "/v1/changes", token: Self.token(region), body: ["changes": .array(changes)])
        guard status == 200, let results = json["results"]?.arrayValue else {
            throw UnexpectedAnswer(what: "POST /v1/changes", status: status, json: json)
        }
        return results
    }
}

/// A hub answer a test did not expect; says what was asked and what came back.
struct UnexpectedAnswer: Error, CustomStringConvertible {
    var what: String
    var status: Int
    var json: JSONValue
    var description: String { "\(what) answered \(status): \(String(decoding: json.serialized(), as: UTF8.self))" }
}
