/// The delays between retries of one failing step of the agent's loop (start-up, LISTEN, push, pull, verdicts):
/// exponential backoff with full jitter, so regions that fail together do not retry together. The n-th delay is
/// uniform in [initial/2, min(max, initial·2ⁿ)]; ``reset()`` after a success starts again from `initial`.
/// A value owned by one task (each loop keeps its own).
public struct RetryBackoff: Sendable {
    public let initialMs: Int
    public let maxMs: Int
    private var attempt = 0

    public init(initialMs: Int, maxMs: Int) {
        self.initialMs = max(1, initialMs)
        self.maxMs = max(self.initialMs, maxMs)
    }

    /// The backoff `tuning.backoff` of `agent.yaml` describes.
    public init(_ settings: AgentConfiguration.Backoff) {
        self.init(initialMs: settings.initialMs, maxMs: settings.maxMs)
    }

    /// The next delay in milliseconds.
    public mutating func nextMs() -> Int {
        let ceiling = min(maxMs, initialMs << min(attempt, 20))
        attempt += 1
        return Int.random(in: min(initialMs / 2, ceiling)...ceiling)
    }

    /// Starts again from `initial` (after a success).
    public mutating func reset() {
        attempt = 0
    }
}
