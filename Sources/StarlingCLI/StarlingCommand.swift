import ArgumentParser
import StarlingCore
import StarlingIO

/// The `starling` executable: one command with a subcommand per role.
@main
struct StarlingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "starling",
        abstract: "Multi-active PostgreSQL sync: one hub, many regional agents.",
        subcommands: [VersionCommand.self, HubCommand.self, AgentCommand.self, DemoCommand.self, AdminCommand.self,
                      BenchServerCommand.self, BenchPushCommand.self])

    /// ArgumentParser's entry point, after the allocator's settings (``AllocatorTuning``): the process may start
    /// itself again before any argument is read.
    static func main() async {
        AllocatorTuning.restartIfNeeded()
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// `starling version`: prints the build's version and the allocator settings the process runs with.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "Print the version and the memory allocator's settings.")

    func run() {
        print("starling \(StarlingVersion.current)")
        print("allocator: GLIBC_TUNABLES=\(AllocatorTuning.current ?? "")")
    }
}

