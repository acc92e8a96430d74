import Dispatch
import Foundation
import StarlingPostgres
import StarlingTestSupport
import Synchronization

@testable import StarlingHub

/// Stalls an in-process hub's sequencer inside a group commit, so that the pushes arriving meanwhile pile up in
/// its queue and the test decides what the next batches hold.
///
/// How: a session of the test holds `LOCK TABLE starling_hub.origin_marks IN EXCLUSIVE MODE` in an open
/// transaction. A batch that raises an origin mark (every push of a fresh change id does) waits on that lock
/// in its `INSERT … ON CONFLICT` until ``holding(_:_:)`` commits, after its body returned or threw. The
/// sequencer's queue itself is read through `@testable` (``queued(_:)``), never guessed from timing.
///
/// Threads: the lock session lives on a dedicated thread (libpq blocks; never on the cooperative pool);
/// `release` and `finished` are the only things it shares.
enum SequencerGate {
    /// Runs `body` while the lock is held on `databaseURL`, then releases it and waits for the session to end.
    static func holding<T>(_ databaseURL: String, _ body: () async throws -> T) async throws -> T {
        let release = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        try await withCheckedThrowingContinuation { (locked: CheckedContinuation<Void, any Error>) in
            Thread {
                defer { finished.signal() }
                let connection: PostgresConnection
                do {
                    connection = try PostgresConnection.connect(url: databaseURL, applicationName: "test-gate")
                    try connection.execute("BEGIN")
                    try connection.execute("LOCK TABLE starling_hub.origin_marks IN EXCLUSIVE MODE")
                } catch {
                    locked.resume(throwing: error)
                    return
                }
                locked.resume()
                release.wait()
                _ = try? connection.execute("COMMIT")
                connection.close()
            }.start()
        }
        func open() async {
            release.signal()
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                Thread {
                    finished.wait()
                    done.resume()
                }.start()
            }
        }
        do {
            let value = try await body()
            await open()
            return value
        } catch {
            await open()
            throw error
        }
    }

    /// Waits until the hub's sequencer is blocked on the gate's lock (its session waits on a lock in this
    /// database): the batch it is in cannot take anything more from the queue.
    static func waitUntilBlocked(_ hub: HubHarness) async throws {
        let url = hub.database.url
        try await waitUntil("the sequencer waits on the gate's lock", timeout: .seconds(30)) {
            try await Task.detached {
                let connection = try PostgresConnection.connect(url: url)
                defer { connection.close() }
                return try connection.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        + "AND application_name = 'starling-hub-sequencer' AND wait_event_type = 'Lock'")[0]
                    .int64(0) == 1
            }.value
        }
    }

    /// Items and changes waiting in the sequencer's queue now.
    static func queued(_ hub: HubHarness) -> (items: Int, changes: Int) {
        hub.hub.sequencer.state.withLock { ($0.items.count, $0.queuedChanges) }
    }

    /// Waits until the queue holds exactly `changes` changes.
    static func waitUntilQueued(_ hub: HubHarness, changes: Int) async throws {
        let what = "the sequencer's queue holds \(changes) changes"
        try await waitUntil(what, timeout: .seconds(30), every: .milliseconds(5)) {
            queued(hub).changes == changes
        }
    }
}
