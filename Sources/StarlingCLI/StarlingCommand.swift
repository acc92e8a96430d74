import ArgumentParser
import StarlingCore

/// The `starling` executable: one command with a subcommand per role.
@main
struct StarlingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "starling",
        abstract: "Multi-active PostgreSQL sync: one hub, many regional agents.",
        subcommands: [VersionCommand.self, HubCommand.self, AgentCommand.self, DemoCommand.self, AdminCommand.self,
                      BenchServerCommand.self, BenchPushCommand.self])
}

/// `starling version`: prints the build's version.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")

    func run() {
        print("starling \(StarlingVersion.current)")
    }
}

