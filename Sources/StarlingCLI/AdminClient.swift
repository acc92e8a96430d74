import ArgumentParser
import Glibc
import StarlingCore
import StarlingHTTP2
import StarlingTLS

/// What went wrong in a `starling admin` command, with the exit code that says so to scripts.
///
/// Exit codes (also in `starling admin --help`): 0 ok; 1 usage or configuration (bad option values, unreadable
/// CA file, the hub refused the request as invalid); 2 hub unreachable or unavailable (connect, TLS, timeout,
/// 5xx); 3 authentication refused (401/403); 4 not found or wrong state (404, 409: no such conflict, already
/// resolved); 5 the hub does not offer this (an older hub, e.g. without reconciliation). ArgumentParser itself exits 64
/// when the command line cannot be parsed at all.
struct AdminFailure: Error, CustomStringConvertible {
    static let usage: Int32 = 1
    static let unreachable: Int32 = 2
    static let authRefused: Int32 = 3
    static let notFound: Int32 = 4
    static let notAvailable: Int32 = 5

    var exitCode: Int32
    var message: String
    var description: String { message }

    init(_ exitCode: Int32, _ message: String) {
        self.exitCode = exitCode
        self.message = message
    }
}

/// Options every `starling admin` subcommand shares: where the hub is and how to authenticate.
struct AdminConnectionOptions: ParsableArguments {
    @Option(help: "Hub base URL: https://host:port, or http://127.0.0.1:port for h2c (default: $STARLING_HUB).")
    var hub: String?

    @Option(help: "Admin token (default: $STARLING_ADMIN_TOKEN; prefer the variable: arguments are visible in ps).")
    var token: String?

    @Option(help: "CA certificate (PEM) that signed the hub's certificate (default: the system's roots).")
    var ca: String?

    @Flag(help: "Print the hub's JSON instead of a table.")
    var json = false

    @Option(help: "Seconds to wait for the hub (connect and response).")
    var timeout = 15

    /// A client for the hub, or a usage failure naming the option at fault.
    func connect() throws(AdminFailure) -> AdminClient {
        let environment = { (name: String) -> String? in getenv(name).map { String(cString: $0) } }
        guard let url = hub ?? environment("STARLING_HUB"), !url.isEmpty else {
            throw AdminFailure(AdminFailure.usage, "--hub is required (or set STARLING_HUB)")
        }
        guard let token = token ?? environment("STARLING_ADMIN_TOKEN"), !token.isEmpty else {
            throw AdminFailure(AdminFailure.usage, "--token is required (or set STARLING_ADMIN_TOKEN)")
        }
        guard (1...3600).contains(timeout) else {
            throw AdminFailure(AdminFailure.usage, "--timeout must be 1…3600 seconds")
        }
        if let ca, access(ca, R_OK) != 0 {
            throw AdminFailure(AdminFailure.usage, "--ca \(ca): cannot read the file")
        }
        var configuration = HTTP2ClientConfiguration(baseURL: url)
        if url.hasPrefix("https://") { configuration.tls = .client(trustRootsPath: ca) }
        configuration.connectTimeout = .seconds(timeout)
        configuration.requestTimeout = .seconds(timeout)
        configuration.defaultHeaders = ["authorization": "Bearer \(token)"]
        do {
            return AdminClient(client: try HTTP2Client(configuration: configuration), url: url)
        } catch {
            throw AdminFailure(AdminFailure.usage, "--hub \(url): \(error)")
        }
    }
}

/// One hub connection for one admin command; maps transport and HTTP outcomes to ``AdminFailure`` codes.
struct AdminClient {
    let client: HTTP2Client
    let url: String

    /// A successful (2xx) answer: raw body and its parsed JSON.
    struct Answer {
        var body: [UInt8]
        var json: JSONValue
    }

    /// Sends a request; anything but 2xx becomes an ``AdminFailure`` with the hub's error message.
    func send(_ method: String, _ path: String, body: JSONValue? = nil) async throws(AdminFailure) -> Answer {
        var headers: HTTPHeaders = [:]
        if body != nil { headers.add("content-type", "application/json") }
        let response: HTTPResponse
        do {
            response = try await client.send(
                HTTPClientRequest(method: method, path: path, headers: headers, body: body?.serialized() ?? []))
        } catch {
            throw AdminFailure(AdminFailure.unreachable, "cannot reach the hub at \(url): \(error)")
        }
        let json = (try? JSONValue(parsing: response.body)) ?? .null
        guard !(200..<300).contains(response.status) else { return Answer(body: response.body, json: json) }
        let message = json["error"]?["message"]?.stringValue ?? String(decoding: response.body.prefix(200), as: UTF8.self)
        let code = json["error"]?["code"]?.stringValue ?? "http_\(response.status)"
        let text = "the hub answered \(response.status) \(code): \(message)"
        switch response.status {
        case 401, 403: throw AdminFailure(AdminFailure.authRefused, text)
        case 404, 409, 410: throw AdminFailure(AdminFailure.notFound, text)
        case 500...: throw AdminFailure(AdminFailure.unreachable, text)
        default: throw AdminFailure(AdminFailure.usage, text)
        }
    }

    func shutdown() { client.shutdown() }
}
