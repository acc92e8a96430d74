import Foundation
import StarlingHub
import Testing

/// `tables[].delta` in hub.yaml: accepted names land in the settings; broken lists are refused naming the key.
struct HubDeltaConfigurationTests {
    private func load(_ json: String) throws -> HubSettings { try ConfigurationLoading.settings(json) }

    private static let base =
        #""database":"postgresql://x/y","admin_token":"admin-secret","regions":[{"name":"us","token":"secret-us"}]"#

    private static let tooMany = (0...64).map { "\"c\($0)\"" }.joined(separator: ",")

    static let invalid: [(String, String)] = [
        (#"{\#(base),"tables":[{"name":"public.s","delta":["qty",""]}]}"#, "tables[0].delta[1]"),
        (#"{\#(base),"tables":[{"name":"public.s","delta":["qty","qty"]}]}"#, "tables[0].delta[1]"),
        (#"{\#(base),"tables":[{"name":"public.s","delta":"qty"}]}"#, "tables[0].delta"),
        (#"{\#(base),"tables":[{"name":"public.s","delta":[\#(tooMany)]}]}"#, "tables[0].delta"),
    ]

    // Proves each broken delta list is refused with an error naming the offending key.
    @Test(arguments: invalid)
    func invalidDeltaNamesTheKey(_ json: String, _ key: String) throws {
        ConfigurationLoading.expectRefused(json, naming: key)
    }

    // Proves delta columns reach the settings with any policy, and default to none.
    @Test func deltaColumnsLoad() throws {
        let settings = try load(
            #"{\#(Self.base),"tables":[{"name":"public.s","policy":"reject","delta":["qty","balance"]},"#
                + #"{"name":"public.t"}]}"#)
        #expect(settings.tablesByName["public.s"]?.deltaColumns == ["qty", "balance"])
        #expect(settings.tablesByName["public.s"]?.policy == .reject)
        #expect(settings.tablesByName["public.t"]?.deltaColumns == [])
    }
}
