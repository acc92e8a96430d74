import ArgumentParser
import Glibc
import Logging
import StarlingHub

/// `starling hub --config hub.yaml`: applies the hub's migrations (`Migrations/hub`, embedded in the binary) and
/// runs the hub until SIGTERM/SIGINT. SIGHUP reloads the synced tables from the same file (``Hub/reload()``).
struct HubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hub", abstract: "Run the hub: sequencer, change log, conflicts, admin API and metrics.")

    @Option(help: "Path of hub.yaml.") var config: String
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    @Flag(help: "Validate the configuration and exit.") var check = false

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("unknown log level \(logLevel)")
        }
        let configuration: HubConfiguration
        do {
            configuration = try HubConfigurationLoader.load(path: config)
            _ = try configuration.validate()
        } catch {
            Console.error("starling hub: \(config): \(error)\n")
            throw ExitCode(2)
        }
        if check {
            print("configuration ok")
            return
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "starling.hub")
        let path = config
        let hub = try Hub(configuration: configuration, logger: logger) { () throws(HubError) in
            try HubConfigurationLoader.load(path: path)
        }
        // A refused reload is logged by the hub with its reason; the running configuration stays.
        let stopper = try ShutdownOnSignal.install(onHangUp: { _ = try? await hub.reload() }) { await hub.shutdown() }
        defer { stopper.close() }
        do {
            try await hub.start()
        } catch {
            logger.error("hub failed to start", metadata: ["error": "\(error)"])
            await hub.shutdown()
            throw ExitCode(1)
        }
        Console.out("listening \(hub.localAddress?.description ?? "?")\n")
        fflush(nil)
        await hub.run()
    }
}
