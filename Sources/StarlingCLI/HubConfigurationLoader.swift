import Glibc
import StarlingHub
import Yams

/// Reads `hub.yaml` into a ``HubConfiguration``: strict YAML decoding (Yams), errors naming the key, and
/// relative TLS paths resolved against the configuration file's directory.
enum HubConfigurationLoader {
    static func load(path: String) throws(HubError) -> HubConfiguration {
        let text = try readFile(path)
        var configuration: HubConfiguration
        do {
            configuration = try YAMLDecoder().decode(HubConfiguration.self, from: text)
        } catch let error as DecodingError {
            throw HubConfiguration.describe(decodingError: error)
        } catch {
            throw HubError(code: .invalidConfiguration, message: "\(path) is not valid YAML: \(error)")
        }
        let directory = path.contains("/") ? String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]) : "."
        if var tls = configuration.tls {
            tls.cert = resolve(tls.cert, against: directory)
            tls.key = resolve(tls.key, against: directory)
            tls.clientCA = tls.clientCA.map { resolve($0, against: directory) }
            configuration.tls = tls
        }
        return configuration
    }

    private static func resolve(_ path: String, against directory: String) -> String {
        path.hasPrefix("/") || path.isEmpty ? path : directory + "/" + path
    }

    private static func readFile(_ path: String) throws(HubError) -> String {
        guard let file = fopen(path, "rb") else {
            throw HubError(
                code: .invalidConfiguration, message: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[..<count])
            guard bytes.count <= 4 << 20 else {
                throw HubError(code: .invalidConfiguration, message: "\(path) is larger than 4 MiB")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
