import Foundation
import StarlingHub
import StarlingTestSupport
import Testing

/// The hub's TLS policy: TLS 1.2 with ECDHE and an AEAD cipher only (HTTP/2 forbids the rest, RFC 9113 §9.2.2),
/// TLS 1.3, both configurable (`tls.min_version`, `tls.ciphers`, `tls.ciphersuites`); checked with OpenSSL's own
/// client, one offered suite at a time. (The test certificates are ECDSA P-256, so the suites named are ECDSA's.)
@Suite(.timeLimit(.minutes(2)))
struct TLSPolicyTests {
    /// One handshake by `openssl s_client` offering ALPN h2 and the given version/suite options; the negotiated
    /// suite, or nil when the hub refused the handshake.
    static func negotiate(_ port: UInt16, _ options: [String]) async throws -> String? {
        let result = try await ProcessRunner.run(
            "openssl",
            ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost", "-alpn", "h2"] + options,
            stdin: [], timeout: .seconds(20))
        guard result.exitCode == 0 else { return nil }
        // "New, TLSv1.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"
        guard let line = result.stdout.split(separator: "\n").first(where: { $0.contains("Cipher is ") }),
            let name = line.split(separator: " ").last, name != "(NONE)"
        else { return nil }
        return String(name)
    }

    @Test func defaultPolicyRefusesEverySuiteHTTP2Forbids() async throws {
        // Before: OpenSSL's default list negotiated ECDHE-ECDSA-AES128-SHA (CBC) with ALPN h2.
        try await SecureHub.with(tls: try SecureHub.tls()) { _, port in
            for forbidden in ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256",
                              "ECDHE-ECDSA-AES256-SHA384", "AES128-SHA", "AES128-GCM-SHA256"] {
                let suite = try await Self.negotiate(port, ["-tls1_2", "-cipher", forbidden])
                #expect(suite == nil, "TLS 1.2 \(forbidden) was accepted")
            }
            for allowed in ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                            "ECDHE-ECDSA-CHACHA20-POLY1305"] {
                let suite = try await Self.negotiate(port, ["-tls1_2", "-cipher", allowed])
                #expect(suite == allowed)
            }
            #expect(try await Self.negotiate(port, ["-tls1_3"]) == "TLS_AES_256_GCM_SHA384")
        }
    }

    @Test func minimumVersionAndListsAreConfigurable() async throws {
        var tls = try SecureHub.tls()
        tls.minVersion = "1.3"
        try await SecureHub.with(tls: tls) { _, port in
            let tls12 = try await Self.negotiate(port, ["-tls1_2"])
            let tls13 = try await Self.negotiate(port, ["-tls1_3"])
            #expect(tls12 == nil, "TLS 1.2 accepted with min_version 1.3")
            #expect(tls13 != nil)
        }
        tls = try SecureHub.tls()
        tls.ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305"
        tls.ciphersuites = "TLS_CHACHA20_POLY1305_SHA256"
        try await SecureHub.with(tls: tls) { _, port in
            let gcm = try await Self.negotiate(port, ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"])
            let tls12 = try await Self.negotiate(port, ["-tls1_2"])
            let tls13 = try await Self.negotiate(port, ["-tls1_3"])
            #expect(gcm == nil)
            #expect(tls12 == "ECDHE-ECDSA-CHACHA20-POLY1305")
            #expect(tls13 == "TLS_CHACHA20_POLY1305_SHA256")
        }
    }

    /// A policy that cannot work, or that would allow what HTTP/2 forbids, is refused at validation (so by
    /// `hub --check` too), naming the key.
    @Test(arguments: [
        (#""min_version": "1.1""#, "tls.min_version"),
        (#""ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA""#, "tls.ciphers"),
        (#""ciphers": "AES128-SHA""#, "tls.ciphers"),
        (#""ciphers": "NO-SUCH-CIPHER""#, "tls.ciphers"),
        (#""ciphersuites": "TLS_NO_SUCH_SUITE""#, "tls.ciphersuites"),
    ])
    func impossiblePoliciesAreRefused(_ member: String, _ key: String) throws {
        let certificates = try TestCertificates.shared()
        ConfigurationLoading.expectRefused(
            """
            {"database": "postgresql://localhost/x", "admin_token": "admin-token-0123456789",
             "tls": {"cert": "\(certificates.serverCertificatePath)", "key": "\(certificates.serverKeyPath)", \(member)},
             "regions": [{"name": "r1", "token": "token-r1-0123456789"}], "tables": [{"name": "public.items"}]}
            """, naming: key)
    }
}
