import Glibc
import StarlingIO

/// SIGTERM/SIGINT → one graceful shutdown, run from a small event loop of its own; a second signal while
/// shutting down exits at once. With `onHangUp`, SIGHUP runs it (the hub's configuration reload) on every
/// signal; without, SIGHUP keeps its default action. One watcher per process (``SignalWatcher``), so both
/// go through this one.
final class ShutdownOnSignal: Sendable {
    private let group: EventLoopGroup

    private init(group: EventLoopGroup) { self.group = group }

    static func install(
        onHangUp: (@Sendable () async -> Void)? = nil, _ shutdown: @escaping @Sendable () async -> Void
    ) throws -> ShutdownOnSignal {
        SignalWatcher.ignoreSIGPIPE()
        let group = try EventLoopGroup(name: "signals", count: 1)
        let loop = group.loops[0]
        loop.execute {
            var started = false
            do {
                let signals = onHangUp == nil ? [SIGTERM, SIGINT] : [SIGTERM, SIGINT, SIGHUP]
                let watcher = try SignalWatcher(signals: signals, loop: loop) { signal in
                    if signal == SIGHUP {
                        if let onHangUp, !started { Task { await onHangUp() } }
                        return
                    }
                    if started { exit(130) }
                    started = true
                    Task { await shutdown() }
                }
                _ = watcher  // retained by its loop registration
            } catch {
                Console.error("starling: cannot watch signals: \(error)\n")
            }
        }
        return ShutdownOnSignal(group: group)
    }

    func close() { group.shutdown() }
}
