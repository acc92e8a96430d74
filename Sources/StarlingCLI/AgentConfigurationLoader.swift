import Foundation
import StarlingAgent
import StarlingCore
import Yams

/// Reads `agent.yaml` into an `AgentConfiguration` and validates it; errors name the file and the key.
enum AgentConfigurationLoader {
    static func load(path: String) throws -> AgentConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw AgentError(code: .invalidConfiguration, message: "cannot read \(path): \(error.localizedDescription)")
        }
        return try parse(text, source: path)
    }

    static func parse(_ text: String, source: String) throws -> AgentConfiguration {
        let configuration: AgentConfiguration
        do {
            configuration = try YAMLDecoder().decode(AgentConfiguration.self, from: text)
        } catch let error as DecodingError {
            throw AgentError(
                code: .invalidConfiguration, message: "\(source): \(describe(error))", key: keyPath(of: error))
        } catch {
            throw AgentError(code: .invalidConfiguration, message: "\(source): \(error)")
        }
        try configuration.validate()
        return configuration
    }

    /// The offending key as `tuning.pull.wait_ms` or `hub[1]` (``ConfigurationKey/path(_:)``, as the hub's).
    private static func keyPath(of error: DecodingError) -> String? {
        switch error {
        case .keyNotFound(let key, let context): ConfigurationKey.path(context.codingPath + [key])
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            ConfigurationKey.path(context.codingPath)
        @unknown default: nil
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        let key = keyPath(of: error) ?? "?"
        switch error {
        case .keyNotFound: return "missing key \(key)"
        case .typeMismatch(let type, _): return "\(key) must be a \(type)"
        case .valueNotFound(let type, _): return "\(key) must be a \(type), not null"
        case .dataCorrupted(let context): return "\(key): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
