import Foundation
import StarlingAgent
import StarlingCore
import StarlingTestSupport
import Testing

/// `agent.yaml` is decoded strictly: an unknown key at any level is refused, naming it, as in `hub.yaml`.
@Suite(.timeLimit(.minutes(2)))
struct AgentConfigurationTests {
    private static let base = #""region":"eu-west","hub":"http://127.0.0.1:8443","token":"t","database":"x""#

    /// JSON (YAML's subset) with one unknown key, and the key path the refusal must name.
    static let unknownKeys: [(String, String)] = [
        (#"{\#(base),"colour":1}"#, "colour"),
        (#"{"region":"eu-west","hub":"http://127.0.0.1:8443","tokn":"t","database":"x"}"#, "tokn"),
        (#"{\#(base),"tuning":{"status_interval":1000}}"#, "tuning.status_interval"),
        (#"{\#(base),"tuning":{"batch":{"max_count":10,"maxBytes":1}}}"#, "tuning.batch.maxBytes"),
        (#"{\#(base),"tuning":{"pull":{"wait":500}}}"#, "tuning.pull.wait"),
        (#"{\#(base),"tuning":{"backoff":{"initial":1}}}"#, "tuning.backoff.initial"),
        (#"{\#(base),"tuning":{"apply":{"worker":2}}}"#, "tuning.apply.worker"),
        (#"{\#(base),"bootstrap":{"replace":true}}"#, "bootstrap.replace"),
    ]

    @Test(arguments: unknownKeys)
    func unknownKeyIsRefusedByName(_ json: String, _ key: String) throws {
        // Proves each unknown key, at every level, fails decoding with its path, not a silent default.
        let error = #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(AgentConfiguration.self, from: Data(json.utf8))
        }
        guard case .dataCorrupted(let context)? = error else {
            Issue.record("expected dataCorrupted, got \(String(describing: error))")
            return
        }
        #expect(ConfigurationKey.path(context.codingPath) == key)
        #expect(context.debugDescription.hasPrefix("unknown key"))
    }

    @Test func everyKnownKeyIsRead() throws {
        // Proves a configuration naming every key decodes each into its field (none is dropped as unknown).
        let json = #"""
            {"region":"eu-west","hub":["http://a:1","http://b:2"],"token":"t","ca":"ca.crt","database":"x",
             "tuning":{"batch":{"max_count":500,"max_bytes":2048},"pull":{"limit":2000,"wait_ms":500},
                       "apply":{"workers":3,"min_parallel_entries":50},
                       "backoff":{"initial_ms":200,"max_ms":20000},"status_interval_ms":2000,
                       "request_timeout_ms":10000,"capture_queue_max_changes":5000,
                       "large_transaction_changes":300,"spill_directory":"/srv/spill"},
             "bootstrap":{"replace_local":true},"compression":"none"}
            """#
        let configuration = try JSONDecoder().decode(AgentConfiguration.self, from: Data(json.utf8))
        #expect(configuration.hubs == ["http://a:1", "http://b:2"] && configuration.ca == "ca.crt")
        let tuning = configuration.tuning
        #expect(tuning.batch.maxCount == 500 && tuning.batch.maxBytes == 2048)
        #expect(tuning.pull.limit == 2000 && tuning.pull.waitMs == 500)
        #expect(tuning.apply.workers == 3 && tuning.apply.minParallelEntries == 50)
        #expect(tuning.backoff.initialMs == 200 && tuning.backoff.maxMs == 20000)
        #expect(tuning.statusIntervalMs == 2000 && tuning.requestTimeoutMs == 10000)
        #expect(tuning.captureQueueMaxChanges == 5000 && tuning.largeTransactionChanges == 300)
        #expect(tuning.spillDirectory == "/srv/spill")
        #expect(throws: Never.self) { try configuration.validate() }
        var relative = configuration
        relative.tuning.spillDirectory = "spill"
        #expect(throws: AgentError.self) { try relative.validate() }
        var tiny = configuration
        tiny.tuning.largeTransactionChanges = 10
        #expect(throws: AgentError.self) { try tiny.validate() }
        var manyFiles = configuration
        manyFiles.tuning.captureQueueMaxChanges = 100_000
        manyFiles.tuning.largeTransactionChanges = 999
        #expect(throws: AgentError.self, "each queued spilled transaction keeps a file open") { try manyFiles.validate() }
        var noWorkers = configuration
        noWorkers.tuning.apply.workers = 0
        #expect(throws: AgentError.self, "tuning.apply.workers 0") { try noWorkers.validate() }
        #expect(configuration.bootstrap.replaceLocal)
        #expect(configuration.compression == .none)
        let minimal = try JSONDecoder().decode(AgentConfiguration.self, from: Data("{\(Self.base)}".utf8))
        #expect(minimal.tuning == AgentConfiguration.Tuning() && minimal.bootstrap == AgentConfiguration.Bootstrap())
        #expect(minimal.hubs == ["http://127.0.0.1:8443"])
        #expect(minimal.compression == .auto)
    }

    static let yamlSamples: [(String, Bool, String?)] = [
        ("ops/examples/agent-us-east.yaml", true, nil),
        ("Tests/StarlingAgentTests/Fixtures/agent-full.yaml", true, nil),
        ("Tests/StarlingAgentTests/Fixtures/agent-unknown-key.yaml", false, "tuning.pull.wait"),
    ]

    @Test(arguments: yamlSamples)
    func yamlSamplesParseWithTheRealBinary(_ path: String, _ isValid: Bool, _ key: String?) async throws {
        // Proves `starling agent --check` (YAML through Yams) accepts the samples and refuses a misspelt key,
        // naming it on stderr.
        let file = AgentTestSupport.repositoryRoot + "/" + path
        let result = try await ProcessRunner.run(try StarlingBinary.path(), ["agent", "--check", "--config", file])
        #expect((result.exitCode == 0) == isValid, "\(result.transcript)")
        if isValid { #expect(result.stdout.contains("configuration ok"), "\(result.transcript)") }
        if let key {
            #expect(result.stderr.contains(key) && result.stderr.contains("unknown key"), "\(result.transcript)")
        }
    }
}
