import ArgumentParser
import Logging
import StarlingAgent
import StarlingPostgres
import Synchronization

/// `starling agent --config agent.yaml [--uninstall]`: runs one region's agent (installs the `starling`
/// schema and capture triggers first, idempotently), or removes them with `--uninstall` (user data stays).
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Run one region's agent (capture, push, pull, apply).")

    @Option(help: "Path to agent.yaml.") var config: String
    @Flag(help: "Remove the capture triggers or replication slot, publication and origin, and the starling schema; keep user data; exit.")
    var uninstall = false
    @Option(help: "Log level (trace, debug, info, notice, warning, error, critical).") var logLevel = "info"
    @Flag(help: "Validate the configuration and exit.") var check = false

    func run() async throws {
        let configuration = try AgentConfigurationLoader.load(path: config)
        if check {
            print("configuration ok")
            return
        }
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "starling.agent")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let schema = AgentSchema()
        if uninstall {
            let url = configuration.database
            let worker = PostgresWorker(url: url, applicationName: "starling-agent-uninstall")
            try await worker.withConnection { connection in try schema.uninstall(connection: connection) }
            await worker.shutdown()
            logger.info("uninstalled: triggers and the starling schema removed, user data kept")
            return
        }
        // Signals are blocked before the client and database threads start, so they inherit the mask.
        let holder = AgentHolder()
        let stopper = try ShutdownOnSignal.install { holder.stop() }
        let hub = try HTTPHubLink(configuration: configuration)
        let agent = Agent(
            configuration: configuration, hub: hub, schema: schema, logger: logger, clockOffset: Self.testClockOffset())
        holder.set(agent)
        defer {
            stopper.close()
            hub.shutdown()
        }
        try await agent.run()
    }
}

/// Lets the signal handler, installed before the agent exists, stop it (a stop before `set` is kept).
final class AgentHolder: Sendable {
    private let state = Mutex<(agent: Agent?, isStopped: Bool)>((nil, false))

    func set(_ agent: Agent) {
        let isStopped = state.withLock { state in
            state.agent = agent
            return state.isStopped
        }
        if isStopped { agent.stop() }
    }

    func stop() {
        let agent = state.withLock { state in
            state.isStopped = true
            return state.agent
        }
        agent?.stop()
    }
}
