import ArgumentParser
import StarlingCore
import StarlingHTTP2
import StarlingIO
import Synchronization

/// `starling bench-push`: synthetic regions pushing batches of inserts concurrently (ops/bench/hub-ingest).
/// Prints one JSON line: committed changes, seconds, changes/s, p50/p99 push latency in milliseconds.
struct BenchPushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-push", abstract: "Load generator for the hub (benchmark).", shouldDisplay: false)

    @Option(help: "Hub base URL (h2c).") var url: String
    @Option(help: "region=token, once per region.") var region: [String]
    @Option(help: "Changes per push.") var batch = 500
    @Option(help: "Pushes per region.") var pushes = 40
    @Option(help: "Table.") var table = "public.items"
    @Option(help: "Offset added to ids, so runs do not collide.") var offset = 0

    func run() async throws {
        let regions = region.compactMap { pair -> (String, String)? in
            let parts = pair.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }
        let bodies = regions.enumerated().map { index, region in
            (0..<pushes).map { push in makeBody(region: region.0, regionIndex: index, push: push) }
        }
        let stats = BenchStats()
        let url = self.url
        let started = Syscall.monotonicNanos()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, (name, token)) in regions.enumerated() {
                let regionBodies = bodies[index]
                group.addTask {
                    var configuration = HTTP2ClientConfiguration(baseURL: url)
                    configuration.gzipRequestsFromBytes = nil
                    configuration.requestTimeout = .seconds(120)
                    let client = try HTTP2Client(configuration: configuration)
                    defer { client.shutdown() }
                    for body in regionBodies {
                        let sent = Syscall.monotonicNanos()
                        let response = try await client.send(
                            HTTPClientRequest(
                                method: "POST", path: "/v1/changes",
                                headers: ["authorization": "Bearer \(token)", "content-type": "application/json"],
                                body: body))
                        let elapsed = Double(Syscall.monotonicNanos() - sent) / 1e6
                        if response.status == 200 {
                            stats.latencies.withLock { $0.append(elapsed) }
                        } else {
                            stats.failures.withLock { $0 += 1 }
                            Console.error("bench-push: \(name): status \(response.status)\n")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let seconds = Double(Syscall.monotonicNanos() - started) / 1e9
        let sorted = stats.latencies.withLock { $0 }.sorted()
        let committed = sorted.count * batch
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
        let rate = Double(committed) / seconds
        print(
            "{\"committed\":\(committed),\"failed_pushes\":\(stats.failures.withLock { $0 }),\"seconds\":\(seconds),"
                + "\"changes_per_second\":\(Int(rate)),\"p50_ms\":\(percentile(0.5)),\"p99_ms\":\(percentile(0.99))}")
    }

    private func makeBody(region: String, regionIndex: Int, push: Int) -> [UInt8] {
        var changes: [JSONValue] = []
        changes.reserveCapacity(batch)
        for index in 0..<batch {
            let n = offset + push * batch + index
            let id = Int64(regionIndex + 1) * 1_000_000_000 + Int64(n)
            let row: JSONValue = [
                "id": .integer(id), "qty": .integer(Int64(n % 1000)), "note": .string("bench row \(n)"),
                "price": .number("12.50"),
            ]
            changes.append([
                "id": .string("\(region):\(n + 1)"), "tx": .string("\(region):tx\(push)"), "table": .string(table),
                "op": "insert", "key": ["id": .integer(id)], "after": row, "base": 0,
                "hlc": .integer(1_764_000_000_000_000 + Int64(n)),
            ])
        }
        let body: JSONValue = ["changes": .array(changes)]
        return body.serialized()
    }
}

/// Latencies and failures gathered by the bench's region tasks.
final class BenchStats: Sendable {
    let latencies = Mutex<[Double]>([])
    let failures = Mutex<Int>(0)
}
