/// A condition a test waited for did not hold in time; the message names it.
public struct WaitTimedOut: Error, CustomStringConvertible {
    public let what: String
    public let timeout: Duration
    public var description: String { "timed out after \(timeout) waiting until \(what)" }
}

/// Polls `condition` every `interval` until it holds, or throws `WaitTimedOut` once `timeout` has passed.
/// It sleeps between polls, so it never holds a thread of the cooperative pool that the awaited work may need;
/// the default timeout is generous because CI machines are loaded and tests wait for conditions, not times.
public func waitUntil(
    _ what: String, timeout: Duration = .seconds(60), every interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: interval)
    }
    if try await condition() { return }
    throw WaitTimedOut(what: what, timeout: timeout)
}
