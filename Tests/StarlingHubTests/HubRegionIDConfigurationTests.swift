import Foundation
import StarlingHub
import Testing

/// `regions[].id` in hub.yaml (the region bits of `starling.next_id()`): optional, 0-1023, unique.
struct HubRegionIDConfigurationTests {
    private func load(_ json: String) throws -> HubSettings { try ConfigurationLoading.settings(json) }

    private static let base = #""database":"postgresql://x/y","admin_token":"admin-secret","tables":[]"#

    static let invalid: [(String, String)] = [
        (#"{\#(base),"regions":[{"name":"us","token":"secret-us","id":1024}]}"#, "regions[0].id"),
        (#"{\#(base),"regions":[{"name":"us","token":"secret-us","id":-1}]}"#, "regions[0].id"),
        (
            #"{\#(base),"regions":[{"name":"us","token":"secret-us","id":3},"#
                + #"{"name":"eu","token":"secret-eu","id":3}]}"#,
            "regions[1].id"
        ),
    ]

    // Proves each bad region id is refused with an error naming the key.
    @Test(arguments: invalid)
    func invalidIDNamesTheKey(_ json: String, _ key: String) throws {
        ConfigurationLoading.expectRefused(json, naming: key)
    }

    // Proves ids are optional and land in the settings.
    @Test func idsLoad() throws {
        let settings = try load(
            #"{\#(Self.base),"regions":[{"name":"us","token":"secret-us","id":0},"#
                + #"{"name":"eu","token":"secret-eu","id":1023},{"name":"ap","token":"secret-ap"}]}"#)
        #expect(settings.regions.map(\.id) == [0, 1023, nil])
    }
}
