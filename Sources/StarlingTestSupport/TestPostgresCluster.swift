import CShims
import Foundation
import Glibc

/// A private, throwaway PostgreSQL cluster for one test (initdb + pg_ctl in a temp directory, on a free
/// loopback port below 32768), for tests that stop and restart Postgres under a running system. The
/// `ops/test` cluster is shared by every test and must never be restarted; this one belongs to its test.
///
/// The binaries are the newest under /usr/lib/postgresql (what ops/test installs), or `STARLING_PG_BIN`.
/// As root, the server runs as the `postgres` user (via runuser), as ops/test does. ``destroy()`` stops the
/// server (immediate) and removes the directory; the test calls it on every path.
public final class TestPostgresCluster: Sendable {
    /// A failed initdb/pg_ctl step, with its output.
    public struct ClusterError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The cluster's directory (data under `data/`, the server log in `postgres.log`).
    public let directory: String
    public let port: Int
    /// The PostgreSQL bin directory (``binDirectory()``) and the prefix that runs a tool as the postgres user
    /// (empty unless root); internal for the point-in-time-restore extension.
    let bin: String
    let runAs: [String]

    /// `postgresql://postgres@127.0.0.1:PORT/<database>`.
    public func url(database: String = "postgres") -> String {
        "postgresql://postgres@127.0.0.1:\(port)/\(database)"
    }

    init(directory: String, port: Int, bin: String, runAs: [String]) {
        self.directory = directory
        self.port = port
        self.bin = bin
        self.runAs = runAs
    }

    /// initdb, configure and start a new cluster; `walLevel` `replica` makes one without logical decoding (the
    /// agents' trigger-capture fallback).
    public static func start(name: String, walLevel: String = "logical") async throws -> TestPostgresCluster {
        try await start(name: name, walLevel: walLevel) { _, _ in "" }
    }

    /// `start(name:walLevel:)` with the postgresql.conf lines `configure` returns appended after the defaults.
    /// It runs after initdb, before the server starts, with the cluster's directory (owned by the server's
    /// user) and the run-as prefix: it may create directories its lines name.
    static func start(name: String, walLevel: String,
                      configure: (_ directory: String, _ runAs: [String]) throws -> String)
        async throws -> TestPostgresCluster
    {
        let bin = try binDirectory()
        let (directory, runAs) = try makeClusterDirectory(name: name)
        try await Self.run(runAs, bin + "/initdb", ["-D", directory + "/data", "-U", "postgres", "-A", "trust",
                                                   "-E", "UTF8", "--no-sync"], log: directory + "/ctl.log",
                           what: "initdb")
        let port = try freePort()
        let configuration = try configure(directory, runAs)
        let conf = """

            listen_addresses = '127.0.0.1'
            port = \(port)
            unix_socket_directories = '\(directory)'
            max_connections = 100
            fsync = off
            shared_buffers = 32MB
            wal_level = \(walLevel)
            max_replication_slots = 20
            max_wal_senders = 20
            \(configuration)
            """
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/data/postgresql.conf"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(conf.utf8))
        try handle.close()
        let cluster = TestPostgresCluster(directory: directory, port: port, bin: bin, runAs: runAs)
        try await cluster.startServer()
        return cluster
    }

    /// Creates `/tmp/starling-pg-<name>-<pid>-<random>` owned by the server's user, and returns it with the
    /// prefix that runs a tool as that user (runuser as root: initdb and postgres refuse to run as root).
    static func makeClusterDirectory(name: String) throws -> (directory: String, runAs: [String]) {
        let directory = "/tmp/starling-pg-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let runAs = getuid() == 0 ? [try ProcessRunner.locate("runuser"), "-u", "postgres", "--"] : []
        try makeOwnedDirectory(directory, runAs: runAs)
        return (directory, runAs)
    }

    /// Creates `path` (and missing parents) and, when tools run as the postgres user, hands it to that user: the
    /// server and its tools write there.
    static func makeOwnedDirectory(_ path: String, runAs: [String]) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard !runAs.isEmpty else { return }
        guard let user = getpwnam("postgres") else { throw ClusterError(description: "no postgres user") }
        guard chown(path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
            throw ClusterError(description: "chown \(path) failed: errno \(errno)")
        }
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    public func startServer() async throws {
        try await run(bin + "/pg_ctl", ["-D", directory + "/data", "-l", directory + "/postgres.log",
                                                   "-w", "-t", "60", "start"], what: "pg_ctl start")
    }

    /// Stops the server the hard way (`-m immediate`: no checkpoint, every backend killed, crash recovery on
    /// the next start), as a crash or a power cut would.
    public func stopServer() async throws {
        try await run(bin + "/pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"],
                           what: "pg_ctl stop")
    }

    /// Stops immediately and starts again.
    public func restart() async throws {
        try await stopServer()
        try await startServer()
    }

    /// Stops the server (if running) and removes the directory.
    public func destroy() async {
        _ = try? await run(bin + "/pg_ctl", ["-D", directory + "/data", "-m", "immediate", "stop"],
                                what: "pg_ctl stop")
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The server log (for failure messages).
    public var log: String {
        (try? String(contentsOfFile: directory + "/postgres.log", encoding: .utf8)) ?? ""
    }

    // MARK: - Helpers

    /// Runs `tool` (as the postgres user when root) with output appended to `<directory>/ctl.log`, and waits
    /// on a dedicated thread. posix_spawn + waitpid, not Foundation's Process: a server that pg_ctl leaves
    /// running must not hold a pipe of ours open, nor depend on Foundation noticing the child's exit.
    func run(_ tool: String, _ arguments: [String], what: String) async throws {
        try await Self.run(runAs, tool, arguments, log: directory + "/ctl.log", what: what)
    }

    static func run(_ runAs: [String], _ tool: String, _ arguments: [String], log: String, what: String)
        async throws
    {
        let argv = runAs + [tool] + arguments
        let status = try await offPool("pg-ctl") { try spawnAndWait(argv, log: log) }
        guard status == 0 else {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw ClusterError(description: "\(what) failed (exit \(status)): \(output.suffix(2000))")
        }
    }

    /// posix_spawn `argv` with stdin from /dev/null and stdout/stderr appended to `log`; blocks until exit.
    private static func spawnAndWait(_ argv: [String], log: String) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o666)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // The server outlives pg_ctl: a descriptor it inherited (another thread's pipe) would stay open for the run.
        starling_spawn_file_actions_addclosefrom(&actions, 3)
        var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, &cArguments, environ)
        guard spawned == 0 else {
            throw ClusterError(description: "posix_spawn \(argv[0]) failed: \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return ProcessRunner.exitCode(waitStatus: status)
    }

    /// STARLING_PG_BIN or the newest /usr/lib/postgresql/N/bin.
    static func binDirectory() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["STARLING_PG_BIN"] { return explicit }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap { Int($0) }.sorted()
        guard let newest = versions.last, FileManager.default.isExecutableFile(atPath: "\(root)/\(newest)/bin/initdb")
        else { throw ProcessRunner.ToolMissing(tool: "initdb (PostgreSQL server under /usr/lib/postgresql)") }
        return "\(root)/\(newest)/bin"
    }

    /// A loopback port in 20000–29999 nothing listens on (below Linux's ephemeral range, so no outgoing
    /// connection can take it between this check and the server's bind). 30000 and up stay free for the fixed
    /// ports of `PatroniFailoverTests`' ops/ha (30001–30052), which a cluster started first would take.
    static func freePort() throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 20000...29999)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if bound == 0 { return port }
        }
        throw ClusterError(description: "no free loopback port in 20000-29999")
    }
}
