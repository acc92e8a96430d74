import Glibc
public import StarlingPostgres
import Synchronization

/// A throwaway database for one test, on the Postgres cluster `ops/test` starts (env `STARLING_PG_URL`).
///
/// `TestDatabase.with { db in … }` creates a fresh, uniquely named database, hands it to the body and drops it
/// afterwards (`DROP DATABASE … WITH (FORCE)`, so connections the test leaked do not block the drop), whether
/// the body returned or threw. Without `STARLING_PG_URL` it fails loudly: tests never skip.
/// Creating and dropping run on one shared `PostgresWorker` thread, never on the cooperative pool.
public struct TestDatabase: Sendable {
    /// The database name (`starling_test_<pid>_<n>_<random>`).
    public let name: String
    /// A `postgresql://` URL for this database.
    public let url: String
    /// The cluster's admin URL when it is not the `ops/test` cluster (a `TestPostgresCluster`).
    public let clusterAdminURL: String?

    /// Thrown when the environment does not say where Postgres is.
    public struct MissingEnvironment: Error, CustomStringConvertible {
        public var description: String {
            "STARLING_PG_URL is not set: run the tests with ops/test (it starts a throwaway Postgres and sets "
                + "STARLING_PG_URL=postgresql://postgres@127.0.0.1:PORT/postgres)"
        }
    }

    /// The admin URL from `STARLING_PG_URL`, or `MissingEnvironment`.
    public static func adminURL() throws -> String {
        guard let value = getenv("STARLING_PG_URL"), case let url = String(cString: value), !url.isEmpty else {
            throw MissingEnvironment()
        }
        return url
    }

    /// Creates a fresh database, runs `body` with it, and drops it afterwards.
    public static func with<T>(
        isolation: isolated (any Actor)? = #isolation, _ body: (TestDatabase) async throws -> T
    ) async throws -> T {
        let database = try await create()
        let value: T
        do {
            value = try await body(database)
        } catch {
            try? await database.drop()
            throw error
        }
        try await database.drop()
        return value
    }

    /// Creates a fresh, uniquely named database; the caller must `drop()` it.
    public static func create() async throws -> TestDatabase {
        try await create(adminURL: try adminURL(), isSharedCluster: true)
    }

    /// Creates a fresh database on the cluster at `adminURL` (e.g. a `TestPostgresCluster`'s).
    public static func create(adminURL: String) async throws -> TestDatabase {
        try await create(adminURL: adminURL, isSharedCluster: false)
    }

    private static func create(adminURL: String, isSharedCluster: Bool) async throws -> TestDatabase {
        let name =
            "starling_test_\(getpid())_\(counter.add(1, ordering: .relaxed).newValue)_"
            + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let quoted = try PostgresIdentifier.quoteName(name)
        try await admin(url: isSharedCluster ? nil : adminURL) { connection in
            _ = try connection.executeScript("CREATE DATABASE \(quoted)", name: "test.createDatabase")
        }
        return TestDatabase(
            name: name, url: replacingDatabase(in: adminURL, with: name),
            clusterAdminURL: isSharedCluster ? nil : adminURL)
    }

    /// Drops the database, terminating any connection still open to it.
    public func drop() async throws {
        let quoted = try PostgresIdentifier.quoteName(name)
        try await Self.admin(url: clusterAdminURL) { connection in
            _ = try connection.executeScript(
                "DROP DATABASE IF EXISTS \(quoted) WITH (FORCE)", name: "test.dropDatabase")
            // An agent's replication origin (WAL capture) is the cluster's and outlives the database; each one
            // takes a replication state slot (max_replication_slots) until dropped.
            _ = try connection.query(
                "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname LIKE $1",
                [.text("starling/\(name)/%")], name: "test.dropOrigins")
        }
    }

    /// Runs `body` on the shared admin worker (`url` nil: the ops/test cluster) or on a short-lived worker
    /// for another cluster.
    private static func admin(url: String?, _ body: @escaping @Sendable (PostgresConnection) throws -> Void)
        async throws
    {
        guard let url else { return try await adminWorker().withConnection(body) }
        let worker = PostgresWorker(url: url, applicationName: "starling-tests-admin", threadName: "test-pg-admin")
        do {
            try await worker.withConnection(body)
            await worker.shutdown()
        } catch {
            await worker.shutdown()
            throw error
        }
    }

    /// Opens a connection to this database (blocking: call it from a test body or a dedicated thread).
    public func connect(applicationName: String? = "starling-tests") throws(PostgresError) -> PostgresConnection {
        try PostgresConnection.connect(url: url, applicationName: applicationName)
    }

    /// Runs `body` on a fresh connection to this database on a dedicated thread (a short-lived
    /// `PostgresWorker`), keeping blocking libpq calls off the cooperative pool; the connection is closed after.
    public func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        try await Self.withConnection(url: url, threadName: "test-pg", body)
    }

    /// Runs `body` on a connection to `url` on a worker thread of its own, closed after (also on failure).
    static func withConnection<T: Sendable>(
        url: String, threadName: String, _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        let worker = PostgresWorker(url: url, applicationName: "starling-tests", threadName: threadName)
        do {
            let value = try await worker.withConnection(body)
            await worker.shutdown()
            return value
        } catch {
            await worker.shutdown()
            throw error
        }
    }

    /// `postgresql://user@host:port/old?x=y` → `postgresql://user@host:port/<database>?x=y`.
    public static func replacingDatabase(in url: String, with database: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url + " dbname=" + database }
        let afterScheme = url[schemeEnd.upperBound...]
        let queryStart = afterScheme.firstIndex(of: "?") ?? afterScheme.endIndex
        let authorityEnd = afterScheme[..<queryStart].firstIndex(of: "/") ?? queryStart
        return String(url[..<authorityEnd]) + "/" + database + String(afterScheme[queryStart...])
    }

    private static let counter = Atomic<Int>(0)
    /// The shared admin worker (one thread, one connection to the admin database), created on first use. A
    /// lazily initialised static (swift_once), not a Mutex-guarded optional: ThreadSanitizer cannot see
    /// Synchronization.Mutex on Linux (ops/tsan.supp) but does see the once-initialisation.
    private static let sharedAdmin: Result<PostgresWorker, any Error> = Result {
        PostgresWorker(url: try adminURL(), applicationName: "starling-tests-admin", threadName: "test-pg-admin")
    }

    private static func adminWorker() throws -> PostgresWorker {
        try sharedAdmin.get()
    }
}
