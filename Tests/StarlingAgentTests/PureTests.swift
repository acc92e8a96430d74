import StarlingAgent
import StarlingCore
import Testing

@Suite("Agent pure parts")
struct PureTests {
    static func entry(_ seq: Int64, _ tx: String) -> LogEntry {
        LogEntry(
            seq: seq, origin: "us", id: "us:\(seq)", tx: tx, table: "public.items", op: .insert, key: ["id": 1],
            row: ["id": 1], hlc: seq, kind: .change, rewritten: false)
    }

    @Test("a full page is cut before its last transaction; a lone transaction asks for more")
    func pullAssembler() {
        // Proves: the pulled batch never ends inside an origin transaction.
        let page = [Self.entry(1, "a"), Self.entry(2, "b"), Self.entry(3, "b")]
        #expect(PullAssembler.completePrefix(page, isComplete: true) == 3)
        #expect(PullAssembler.completePrefix(page, isComplete: false) == 1)
        #expect(PullAssembler.completePrefix(Array(page.dropFirst()), isComplete: false) == nil)
        #expect(PullAssembler.completePrefix([], isComplete: false) == 0)
    }

    @Test("the batcher takes whole transactions in order and stops at the first that does not fit")
    func batcher() {
        // Proves: interleaved transactions stay whole and keep the order of their first rows.
        func row(_ id: Int64, _ tx: Int64) -> OutboxChange {
            OutboxChange(
                id: id, tx: tx, table: "t", op: .insert, key: ["id": .integer(id)], before: nil,
                after: ["id": .integer(id)], base: 0, capturedAt: 0, hlc: nil, approximateBytes: 100)
        }
        let rows = [row(1, 10), row(2, 20), row(3, 10), row(4, 30)]
        #expect(OutboxBatcher.select(rows, maxCount: 3, maxBytes: 1 << 20).map(\.id) == [1, 2, 3])
        #expect(OutboxBatcher.select(rows, maxCount: 2, maxBytes: 1 << 20).map(\.id) == [1, 3])
        #expect(OutboxBatcher.select(rows, maxCount: 1, maxBytes: 1 << 20).map(\.id) == [1, 3])
        #expect(OutboxBatcher.select(rows, maxCount: 10, maxBytes: 250).map(\.id) == [1, 3])
    }

    @Test("configuration validation names the offending key")
    func configurationValidation() throws {
        // Proves: each invalid value is refused with its key; the defaults are valid.
        let good = AgentConfiguration(
            region: "us-east", hub: "https://hub:8443", token: "t", ca: "ca.crt", database: "postgresql://x/y")
        try good.validate()
        var cases: [(AgentConfiguration, String)] = []
        var bad = good
        bad.region = "hub"
        cases.append((bad, "region"))
        bad = good
        bad.ca = nil
        cases.append((bad, "ca"))
        bad = good
        bad.hub = "ftp://x"
        cases.append((bad, "hub"))
        bad = good
        bad.tuning.batch.maxCount = 0
        cases.append((bad, "tuning.batch.max_count"))
        bad = good
        bad.tuning.backoff.maxMs = 1
        cases.append((bad, "tuning.backoff.max_ms"))
        for (configuration, key) in cases {
            #expect(throws: AgentError.self) { try configuration.validate() }
            do { try configuration.validate() } catch { #expect(error.key == key) }
        }
    }

    @Test("backoff grows, stays within bounds and resets")
    func backoff() {
        // Proves: delays lie in [initial/2, max] and grow until the cap.
        var backoff = RetryBackoff(initialMs: 100, maxMs: 1000)
        for attempt in 0..<10 {
            let delay = backoff.nextMs()
            #expect(delay >= 50 && delay <= min(1000, 100 << attempt))
        }
        backoff.reset()
        #expect(backoff.nextMs() <= 100)
    }
}
