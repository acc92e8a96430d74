import Glibc
import StarlingIO

/// SIGTERM/SIGINT → one graceful shutdown. The signals are blocked in every thread and read from a signalfd on
/// a small event loop of its own; a second signal while shutting down exits at once.
final class ShutdownOnSignal: Sendable {
    private let group: EventLoopGroup

    private init(group: EventLoopGroup) { self.group = group }

    /// Must run before other threads start (so they inherit the blocked mask).
    static func install(_ shutdown: @escaping @Sendable () async -> Void) throws -> ShutdownOnSignal {
        SignalWatcher.blockSignals([SIGTERM, SIGINT])
        SignalWatcher.ignoreSIGPIPE()
        let group = try EventLoopGroup(name: "signals", count: 1)
        let loop = group.loops[0]
        loop.execute {
            var started = false
            do {
                let watcher = try SignalWatcher(signals: [SIGTERM, SIGINT], loop: loop) { _ in
                    if started { exit(130) }
                    started = true
                    Task { await shutdown() }
                }
                _ = watcher  // retained by its loop registration
            } catch {
                StandardError.write("starling: cannot watch signals: \(error)\n")
            }
        }
        return ShutdownOnSignal(group: group)
    }

    func close() { group.shutdown() }
}
