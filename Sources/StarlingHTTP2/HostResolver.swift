import Glibc
import StarlingIO

/// Resolves a host name with getaddrinfo on a thread of its own (it blocks), preferring IPv4.
enum HostResolver {
    static func resolve(host: String, port: UInt16,
                        completion: @escaping @Sendable (Result<SocketAddress, IOError>) -> Void) {
        do {
            // Detached: one resolution per (re)connect, so an unjoined thread per reconnect would pile up.
            try ThreadSpawner.spawn(name: "resolve") { completion(resolveBlocking(host: host, port: port)) }.detach()
        } catch {
            completion(.failure(error))
        }
    }

    static func resolveBlocking(host: String, port: UInt16) -> Result<SocketAddress, IOError> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            let reason = String(cString: gai_strerror(rc))
            return .failure(IOError(.resolutionFailed, "cannot resolve \(host): \(reason)"))
        }
        defer { freeaddrinfo(list) }  // the list is ours to free on every path
        var candidates: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let sa = entry.pointee.ai_addr {
                var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                if entry.pointee.ai_family == AF_INET {
                    var addr = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count))
                } else if entry.pointee.ai_family == AF_INET6 {
                    var addr = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count))
                }
                if let address = try? SocketAddress(host: String(cString: buffer), port: port) {
                    candidates.append(address)
                }
            }
            cursor = entry.pointee.ai_next
        }
        guard let best = candidates.first(where: { $0.family == AF_INET }) ?? candidates.first else {
            return .failure(IOError(.resolutionFailed, "\(host) has no IPv4 or IPv6 address"))
        }
        return .success(best)
    }
}
