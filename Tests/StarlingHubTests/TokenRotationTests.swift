import Foundation
import StarlingCore
import StarlingHub
import Testing

/// Token rotation: previous tokens valid until a time, next to the current one, for regions and admin.
@Suite(.timeLimit(.minutes(2)))
struct TokenRotationTests {
    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    @Test func oldAndNewTokensBothWorkDuringTheWindowAndOnlyTheNewAfter() async throws {
        // Proves a region's and the admin's previous token work until `until` alongside the current one, that
        // an expired previous token gets 401 (naming the rotation), and that a previous token keeps its owner.
        let future = Self.iso(Date().addingTimeInterval(3600))
        let past = Self.iso(Date().addingTimeInterval(-1))
        try await SecureHub.with(configure: { configuration in
            configuration.regions[0].previousTokens = [
                .init(token: "r1-old-still-valid", until: future), .init(token: "r1-older-expired", until: past),
            ]
            configuration.adminPreviousTokens = [.init(token: "admin-old-valid", until: future)]
        }) { hub, _ in
            for token in [HubHarness.token("r1"), "r1-old-still-valid"] {
                let config = try await hub.send("GET", "/v1/config", token: token)
                #expect(config.status == 200)
                #expect(config.json["region"] == "r1")
            }
            let pushed = try await hub.send(
                "POST", "/v1/changes", token: "r1-old-still-valid",
                body: (["changes": [Changes.insert("r1", 1, id: 1)]] as JSONValue).serialized())
            #expect(pushed.status == 200)
            let expired = try await hub.send("GET", "/v1/config", token: "r1-older-expired")
            #expect(expired.status == 401)
            #expect(expired.json["error"]?["message"]?.stringValue?.contains("expired") == true)
            for token in [HubHarness.adminToken, "admin-old-valid"] {
                #expect(try await hub.send("GET", "/v1/status", token: token).status == 200)
            }
            #expect(try await hub.send("GET", "/v1/config", token: "admin-old-valid").status == 403)
            #expect(try await hub.send("GET", "/v1/status", token: "r1-old-still-valid").status == 403)
        }
    }

    @Test func rotationConfigurationIsDecodedAndValidated() throws {
        // Proves hub.yaml's previous_tokens decode (plain or SHA-256, RFC 3339 until), and that every mistake is
        // refused naming its key: a bad time, a missing until, both or neither token, too many, a shared token.
        let good = HubConfiguration(
            database: "postgresql://x", adminToken: "admin-token",
            adminPreviousTokens: [.init(tokenSHA256: String(repeating: "ab", count: 32), until: "2030-01-01T00:00:00Z")],
            regions: [.init(name: "a", token: "token-a1", previousTokens: [
                .init(token: "token-a0", until: "2030-01-01T02:00:00.5+02:00")
            ])], tables: [])
        let settings = try good.validate()
        #expect(settings.regions[0].previousTokens[0].validUntilMicros == 1_893_456_000_000_000 + 500_000)
        #expect(settings.adminPreviousTokens.count == 1)

        func failure(_ change: (inout HubConfiguration) -> Void) -> String? {
            var configuration = good
            change(&configuration)
            do {
                _ = try configuration.validate()
                return nil
            } catch {
                return error.key
            }
        }
        #expect(failure { $0.regions[0].previousTokens[0].until = "2030-13-01T00:00:00Z" }
            == "regions[0].previous_tokens[0].until")
        #expect(failure { $0.regions[0].previousTokens[0].until = "2030-01-01 00:00" }
            == "regions[0].previous_tokens[0].until")
        #expect(failure { $0.regions[0].previousTokens[0].token = nil } == "regions[0].previous_tokens[0].token")
        #expect(failure { $0.regions[0].previousTokens[0].tokenSHA256 = "00" } == "regions[0].previous_tokens[0].token")
        #expect(failure { $0.adminPreviousTokens[0].tokenSHA256 = "zz" } == "admin_previous_tokens[0].token_sha256")
        #expect(failure {
            $0.regions[0].previousTokens = Array(repeating: .init(token: "token-xx", until: "2030-01-01T00:00:00Z"), count: 9)
        } == "regions[0].previous_tokens")
        #expect(failure { $0.regions[0].previousTokens[0].token = "admin-token" } == "regions[0].previous_tokens[0].token")
        #expect(failure {
            $0.regions.append(.init(name: "b", token: "token-a0"))
        } == "regions[1].token")
    }

    @Test(arguments: [
        ("1970-01-01T00:00:00Z", Int64(0)), ("1970-01-01T00:00:01.000001Z", 1_000_001),
        ("2000-02-29T12:00:00+01:00", 951_822_000_000_000), ("1969-12-31T23:59:59-00:00", -1_000_000),
        ("2026-12-01T00:00:00z", 1_796_083_200_000_000),
    ])
    func rfc3339Times(text: String, micros: Int64) throws {
        // Proves the until parser's arithmetic on epoch, fractions, leap days, offsets and lowercase z.
        let configuration = HubConfiguration(
            database: "postgresql://x", adminToken: "admin-token",
            regions: [.init(name: "a", token: "token-a1", previousTokens: [.init(token: "token-a0", until: text)])],
            tables: [])
        #expect(try configuration.validate().regions[0].previousTokens[0].validUntilMicros == micros)
    }

    @Test(arguments: ["2001-02-29T00:00:00Z", "2030-01-01T24:00:00Z", "2030-01-01T00:00:00", "2030-01-01T00:00:00.Z",
                      "2030-01-01T00:00:00+0200", "x2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z "])
    func rfc3339Refusals(text: String) {
        // Proves malformed until values are refused rather than read as some other time.
        let configuration = HubConfiguration(
            database: "postgresql://x", adminToken: "admin-token",
            regions: [.init(name: "a", token: "token-a1", previousTokens: [.init(token: "token-a0", until: text)])],
            tables: [])
        #expect(throws: HubError.self) { try configuration.validate() }
    }
}
