import Foundation

/// Throwaway certificates for TLS tests, made with the `openssl` command-line tool in a fresh temporary
/// directory, once per process (`shared()`), all with EC P-256 keys:
///
/// ```
///   Starling Test CA ──signs──▶ server  (CN=localhost, SAN DNS:localhost, IP:127.0.0.1, serverAuth)
///                    └─signs──▶ client  (CN=starling-test-client, clientAuth)
///   Unrelated Test CA ─signs──▶ untrusted (CN=localhost, same SANs, serverAuth + clientAuth)
/// ```
/// The untrusted certificate differs from the good ones only in its issuer, so a test refusing it
/// proves that the chain was checked. Files stay until the temporary directory is cleaned.
public struct TestCertificates: Sendable {
    /// Why generation failed: the `openssl` invocation and its stderr.
    public struct GenerationError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { "TestCertificates: \(message)" }
    }

    /// The directory holding every file below.
    public let directory: String
    /// The test CA, trusted by servers (for clients) and clients (for servers) in tests.
    public let caCertificatePath: String
    public let caKeyPath: String
    /// The server certificate for localhost / 127.0.0.1, issued by the test CA.
    public let serverCertificatePath: String
    public let serverKeyPath: String
    /// A client certificate issued by the test CA, for mTLS.
    public let clientCertificatePath: String
    public let clientKeyPath: String
    /// A CA nobody trusts.
    public let otherCACertificatePath: String
    public let otherCAKeyPath: String
    /// A certificate for localhost / 127.0.0.1 (server and client use) issued by the other CA.
    public let untrustedCertificatePath: String
    public let untrustedKeyPath: String

    /// The certificates of this process, generated on first use (thread-safe: a lazy static).
    public static func shared() throws -> TestCertificates {
        try cached.get()
    }

    private static let cached: Result<TestCertificates, any Error> = Result { try generate() }

    /// Generates a fresh set into a new temporary directory.
    public static func generate() throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("starling-test-certs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let generator = Generator(directory: directory)
        try generator.makeCA(name: "ca", commonName: "Starling Test CA")
        try generator.makeCA(name: "other-ca", commonName: "Unrelated Test CA")
        try generator.makeLeaf(
            name: "server", commonName: "localhost", issuer: "ca", serial: 2, extensions: """
            extendedKeyUsage = serverAuth
            subjectAltName = DNS:localhost,IP:127.0.0.1
            """)
        try generator.makeLeaf(
            name: "client", commonName: "starling-test-client", issuer: "ca", serial: 3,
            extensions: "extendedKeyUsage = clientAuth")
        try generator.makeLeaf(
            name: "untrusted", commonName: "localhost", issuer: "other-ca", serial: 4, extensions: """
            extendedKeyUsage = serverAuth,clientAuth
            subjectAltName = DNS:localhost,IP:127.0.0.1
            """)
        func path(_ file: String) -> String { directory + "/" + file }
        return TestCertificates(
            directory: directory,
            caCertificatePath: path("ca.crt"), caKeyPath: path("ca.key"),
            serverCertificatePath: path("server.crt"), serverKeyPath: path("server.key"),
            clientCertificatePath: path("client.crt"), clientKeyPath: path("client.key"),
            otherCACertificatePath: path("other-ca.crt"), otherCAKeyPath: path("other-ca.key"),
            untrustedCertificatePath: path("untrusted.crt"), untrustedKeyPath: path("untrusted.key"))
    }
}

/// Runs `openssl` to make keys and certificates in one directory.
private struct Generator {
    let directory: String

    func path(_ file: String) -> String { directory + "/" + file }

    /// A self-signed CA: `<name>.key`, `<name>.crt`.
    func makeCA(name: String, commonName: String) throws {
        try makeKey(name)
        let config = path("\(name).cnf")
        try write(config, """
            [req]
            distinguished_name = dn
            prompt = no
            x509_extensions = ext
            [dn]
            CN = \(commonName)
            [ext]
            basicConstraints = critical,CA:TRUE
            keyUsage = critical,keyCertSign,cRLSign
            subjectKeyIdentifier = hash
            authorityKeyIdentifier = keyid:always

            """)
        try run(["req", "-x509", "-new", "-config", config, "-key", path("\(name).key"), "-sha256",
                 "-days", "3650", "-out", path("\(name).crt")])
    }

    /// A leaf certificate issued by `issuer` with the given extra extensions: `<name>.key`, `<name>.crt`.
    func makeLeaf(name: String, commonName: String, issuer: String, serial: Int, extensions: String) throws {
        try makeKey(name)
        let config = path("\(name).cnf")
        try write(config, """
            [req]
            distinguished_name = dn
            prompt = no
            [dn]
            CN = \(commonName)
            [ext]
            basicConstraints = critical,CA:FALSE
            keyUsage = critical,digitalSignature
            subjectKeyIdentifier = hash
            authorityKeyIdentifier = keyid
            \(extensions)

            """)
        try run(["req", "-new", "-config", config, "-key", path("\(name).key"), "-out", path("\(name).csr")])
        try run(["x509", "-req", "-in", path("\(name).csr"), "-CA", path("\(issuer).crt"),
                 "-CAkey", path("\(issuer).key"), "-set_serial", String(serial), "-days", "3650", "-sha256",
                 "-extfile", config, "-extensions", "ext", "-out", path("\(name).crt")])
    }

    private func makeKey(_ name: String) throws {
        try run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", path("\(name).key")])
    }

    private func write(_ file: String, _ text: String) throws {
        try text.write(toFile: file, atomically: true, encoding: .utf8)
    }

    /// Runs `openssl arguments`, failing with its stderr when it exits non-zero, times out or cannot start. Through
    /// the process runner: with Foundation's `Process` and `Pipe`, the pipe's write end (no O_CLOEXEC) was inherited
    /// by a tool another suite started meanwhile (h2load against a server of this process), and reading openssl's
    /// stderr to EOF waited for that tool; the tool waited for handlers on the cooperative pool, whose threads were
    /// waiting for these certificates (a CI run: five suites at their time limits).
    private func run(_ arguments: [String]) throws {
        let result: ProcessRunner.Result
        do {
            result = try ProcessRunner.runNow("openssl", arguments, timeout: .seconds(60))
        } catch {
            throw TestCertificates.GenerationError(message: "cannot start openssl: \(error)")
        }
        guard result.exitCode == 0, !result.timedOut else {
            throw TestCertificates.GenerationError(
                message: "openssl \(arguments.joined(separator: " ")) failed: \(result.transcript)")
        }
    }
}
