import Foundation
import Glibc

/// A throwaway PostgreSQL cluster for `starling demo`: initdb into a temp dir, start on a free loopback port,
/// stop and delete everything in `remove()`. Runs the server as the `postgres` OS user when we are root
/// (initdb refuses root).
final class DemoCluster: Sendable {
    struct Failure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    let directory: String
    let port: Int
    let binDirectory: String
    private let runAsPostgres: Bool

    var adminURL: String { url(database: "postgres") }
    func url(database: String) -> String { "postgresql://postgres@127.0.0.1:\(port)/\(database)" }

    private init(directory: String, port: Int, binDirectory: String, runAsPostgres: Bool) {
        self.directory = directory
        self.port = port
        self.binDirectory = binDirectory
        self.runAsPostgres = runAsPostgres
    }

    /// initdb + start. Throws with the server log's tail when anything fails.
    static func start() throws -> DemoCluster {
        let bin = try findBinDirectory()
        let directory = NSTemporaryDirectory() + "starling-demo-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let runAsPostgres = geteuid() == 0
        if runAsPostgres {
            _ = try run("/bin/chown", ["postgres:postgres", directory])
            _ = try run("/bin/chmod", ["755", directory])
        }
        let port = try freePort()
        let cluster = DemoCluster(directory: directory, port: port, binDirectory: bin, runAsPostgres: runAsPostgres)
        do {
            try cluster.runPostgresTool("initdb", ["-D", directory + "/data", "-U", "postgres", "-A", "trust",
                                                   "-E", "UTF8", "--no-sync"])
            let settings = """
                listen_addresses = '127.0.0.1'
                port = \(port)
                unix_socket_directories = '\(directory)'
                max_connections = 200
                shared_buffers = 128MB
                fsync = on
                synchronous_commit = on
                wal_level = logical
                max_replication_slots = 32
                max_wal_senders = 32

                """
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/data/postgresql.conf"))
            handle.seekToEndOfFile()
            handle.write(Data(settings.utf8))
            try handle.close()
            try cluster.runPostgresTool("pg_ctl", ["-D", directory + "/data", "-l", directory + "/postgres.log",
                                                   "-w", "-t", "60", "start"])
        } catch {
            cluster.remove()
            throw error
        }
        return cluster
    }

    /// Stops the server (immediately: it is throwaway) and deletes the directory.
    func remove() {
        _ = try? runPostgresTool("pg_ctl", ["-D", directory + "/data", "-m", "immediate", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func runPostgresTool(_ tool: String, _ arguments: [String]) throws {
        let path = binDirectory + "/" + tool
        let result = runAsPostgres
            ? try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", path] + arguments)
            : try Self.run(path, arguments)
        guard result.status == 0 else {
            throw Failure(message: "\(tool) failed (exit \(result.status)): \(result.output)")
        }
    }

    private static func findBinDirectory() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        let sorted = versions.compactMap { Int($0) }.sorted(by: >)
        for version in sorted where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        throw Failure(message: "no PostgreSQL server under \(root) (ops/demo installs it: apt-get install postgresql)")
    }

    /// A loopback port below 32768 that nobody listens on (bind test).
    private static func freePort() throws -> Int {
        for _ in 0..<200 {
            let candidate = Int.random(in: 20000..<30000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(candidate).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if rc == 0 { return candidate }
        }
        throw Failure(message: "no free loopback port in 20000-29999")
    }

    /// Runs a program to completion with posix_spawn + waitpid (Foundation's Process.waitUntilExit hangs on
    /// `pg_ctl start`, whose server outlives it). Output goes to a temp file and is returned.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let outputPath = NSTemporaryDirectory() + "starling-demo-cmd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }  // the actions are ours to free on every path
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }  // strdup'd copies, freed here
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard rc == 0 else { throw Failure(message: "cannot start \(executable): errno \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw Failure(message: "waitpid for \(executable) failed: errno \(errno)") }
        }
        let data = FileManager.default.contents(atPath: outputPath) ?? Data()
        let exitCode = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return (exitCode, String(decoding: data, as: UTF8.self))
    }
}
