import Foundation
import StarlingHub
import Testing

/// Loading hub configurations from JSON text, as `starling hub` loads YAML: decoding errors become the hub's
/// errors naming the key, then validation. Shared by the configuration suites.
enum ConfigurationLoading {
    static func settings(_ json: String) throws -> HubSettings {
        let configuration: HubConfiguration
        do {
            configuration = try JSONDecoder().decode(HubConfiguration.self, from: Data(json.utf8))
        } catch {
            throw HubConfiguration.describe(decodingError: error)
        }
        return try configuration.validate()
    }

    /// Expects `json` to be refused with an error naming `key`.
    static func expectRefused(_ json: String, naming key: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation) {
            try settings(json)
        } throws: { error in
            (error as? HubError)?.key == key
        }
    }
}
