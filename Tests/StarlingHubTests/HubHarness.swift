import Foundation
import Logging
import StarlingCore
import StarlingHTTP2
import StarlingHub
import StarlingIO
import StarlingPostgres
import StarlingTLS
import StarlingTestSupport

/// An in-process hub on 127.0.0.1:0 (h2c) over a fresh test database, with one HTTP/2 client per caller.
///
/// Region tokens are `token-<region>`, the admin token `admin-token`. `with` starts the hub, runs the body,
/// and shuts everything down (dropping the database) whether the body returned or threw.
struct HubHarness {
    static let regionNames = ["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"]
    static let adminToken = "admin-token"

    let hub: Hub
    let database: TestDatabase
    let client: HTTP2Client

    static func token(_ region: String) -> String { "token-\(region)" }

    static func configuration(
        database: String, tables: [HubConfiguration.Table], limits: HubConfiguration.Limits = .init()
    ) -> HubConfiguration {
        HubConfiguration(
            listen: "127.0.0.1:0", database: database, adminToken: adminToken,
            regions: regionNames.enumerated().map { index, name in
                HubConfiguration.Region(name: name, token: token(name), priority: 100 - index * 10)
            },
            tables: tables, limits: limits)
    }

    static let defaultTables: [HubConfiguration.Table] = [
        .init(name: "public.items", policy: "lww"), .init(name: "public.prio", policy: "priority"),
        .init(name: "public.merged", policy: "merge"), .init(name: "public.manual", policy: "manual"),
        .init(name: "public.firsts", policy: "reject"),
    ]

    static func with<T>(
        tables: [HubConfiguration.Table] = defaultTables, limits: HubConfiguration.Limits = .init(),
        clock: TimeSource = .system, _ body: (HubHarness) async throws -> T
    ) async throws -> T {
        try await TestDatabase.with { database in
            try await run(
                configuration(database: database.url, tables: tables, limits: limits), on: database, clock: clock, body)
        }
    }

    /// Starts a hub with `configuration` on `database` (a second run on the same database is a restart) and a
    /// client for it (`https` with `clientTLS` when the configuration has TLS), runs the body, and shuts the
    /// client and the hub down whether the body returned or threw.
    static func run<T>(
        _ configuration: HubConfiguration, on database: TestDatabase, clientTLS: TLSConfiguration? = nil,
        logLevel: Logger.Level = .warning,
        configurationSource: (@Sendable () throws(HubError) -> HubConfiguration)? = nil, clock: TimeSource = .system,
        _ body: (HubHarness) async throws -> T
    ) async throws -> T {
        var logger = Logger(label: "test.hub")
        logger.logLevel = logLevel
        let hub = try Hub(
            configuration: configuration, logger: logger, configurationSource: configurationSource, clock: clock)
        try await hub.start()
        let scheme = configuration.tls == nil ? "http" : "https"
        let client: HTTP2Client
        do {
            client = try HTTP2Client(
                configuration: HTTP2ClientConfiguration(
                    baseURL: "\(scheme)://127.0.0.1:\(hub.localAddress?.port ?? 0)", tls: clientTLS))
        } catch {
            await hub.shutdown(gracePeriod: .seconds(1))
            throw error
        }
        let harness = HubHarness(hub: hub, database: database, client: client)
        do {
            let value = try await body(harness)
            client.shutdown()
            await hub.shutdown(gracePeriod: .seconds(1))
            return value
        } catch {
            client.shutdown()
            await hub.shutdown(gracePeriod: .seconds(1))
            throw error
        }
    }

    /// Sends a request with `token` and returns the status and parsed JSON body (null when not JSON).
    /// `GET /metrics` with the admin token (it takes the scrape token or the admin token).
    func metrics(client: HTTP2Client? = nil) async throws -> HTTPResponse {
        try await (client ?? self.client).send(
            HTTPClientRequest(
                method: "GET", path: "/metrics", headers: ["authorization": "Bearer \(Self.adminToken)"]))
    }

    func send(
        _ method: String, _ path: String, token: String?, body: [UInt8] = [], client: HTTP2Client? = nil
    ) async throws -> (status: Int, json: JSONValue) {
        var headers: HTTPHeaders = ["content-type": "application/json"]
        if let token { headers.add("authorization", "Bearer \(token)") }
        let response = try await (client ?? self.client).send(
            HTTPClientRequest(method: method, path: path, headers: headers, body: body))
        let json = (try? JSONValue(parsing: response.body)) ?? .null
        return (response.status, json)
    }

    func push(_ region: String, _ changes: [JSONValue], client: HTTP2Client? = nil) async throws
        -> (status: Int, json: JSONValue)
    {
        let body: JSONValue = ["changes": .array(changes)]
        return try await send("POST", "/v1/changes", token: Self.token(region), body: body.serialized(), client: client)
    }

    func pull(_ region: String, after: Int64, limit: Int = 500, waitMs: Int = 0, client: HTTP2Client? = nil)
        async throws -> (status: Int, json: JSONValue)
    {
        try await send(
            "GET", "/v1/changes?after=\(after)&limit=\(limit)&wait_ms=\(waitMs)", token: Self.token(region),
            client: client)
    }

    func admin(_ method: String, _ path: String, body: JSONValue? = nil) async throws -> (status: Int, json: JSONValue)
    {
        try await send(method, path, token: Self.adminToken, body: body?.serialized() ?? [])
    }

    /// Row counts of the hub's tables, to prove a refused request stored nothing.
    func counts() async throws -> [Int64] {
        let url = database.url
        return try await Task.detached {
            let connection = try PostgresConnection.connect(url: url)
            defer { connection.close() }
            var result: [Int64] = []
            for table in ["log", "heads", "decisions", "conflicts", "audit"] {
                result.append(try connection.query("SELECT count(*) FROM starling_hub.\(table)")[0].int64(0))
            }
            return result
        }.value
    }
}

/// Builders for wire changes.
enum Changes {
    static func insert(
        _ region: String, _ n: Int, table: String = "public.items", id: Int64, row: JSONObject = [:], base: Int64 = 0,
        hlc: Int64 = 1000
    ) -> JSONValue {
        var after = row
        after["id"] = .integer(id)
        return [
            "id": .string("\(region):\(n)"), "tx": .string("\(region):tx\(n)"), "table": .string(table),
            "op": "insert", "key": ["id": .integer(id)], "after": .object(after), "base": .integer(base),
            "hlc": .integer(hlc),
        ]
    }

    static func update(
        _ region: String, _ n: Int, table: String = "public.items", id: Int64, before: JSONObject, after: JSONObject,
        base: Int64, hlc: Int64
    ) -> JSONValue {
        var beforeRow = before
        beforeRow["id"] = .integer(id)
        var afterRow = after
        afterRow["id"] = .integer(id)
        return [
            "id": .string("\(region):\(n)"), "tx": .string("\(region):tx\(n)"), "table": .string(table),
            "op": "update", "key": ["id": .integer(id)], "before": .object(beforeRow), "after": .object(afterRow),
            "base": .integer(base), "hlc": .integer(hlc),
        ]
    }

    static func delete(
        _ region: String, _ n: Int, table: String = "public.items", id: Int64, before: JSONObject, base: Int64,
        hlc: Int64
    ) -> JSONValue {
        var beforeRow = before
        beforeRow["id"] = .integer(id)
        return [
            "id": .string("\(region):\(n)"), "tx": .string("\(region):tx\(n)"), "table": .string(table),
            "op": "delete", "key": ["id": .integer(id)], "before": .object(beforeRow), "base": .integer(base),
            "hlc": .integer(hlc),
        ]
    }
}

/// The repository root (for fixtures and migrations; the binary comes from `StarlingBinary.path()`).
let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()
