internal import CLibPQ
internal import Glibc

/// A NOTIFY delivered to a listening connection.
public struct PostgresNotification: Sendable, Hashable {
    /// The channel name, as the notifier spelled it.
    public var channel: String
    /// The payload ("" when none was given).
    public var payload: String
    /// The server process ID of the notifying session.
    public var backendPID: Int32

    public init(channel: String, payload: String, backendPID: Int32) {
        self.channel = channel
        self.payload = payload
        self.backendPID = backendPID
    }
}

/// LISTEN/NOTIFY.
///
/// Two ways to wait: an event loop registers `socketDescriptor` for readability (epoll), then calls
/// `consumeInput()` and `drainNotifications()` when it fires — neither blocks. A thread with nothing else to do
/// calls `waitForNotifications(timeout:)`, which blocks in `poll`. Notifications that arrive while a query runs
/// are queued by libpq and returned by the next drain. A connection watched by an event loop is dedicated to
/// listening: running a statement on it would block the loop.
extension PostgresConnection {
    /// `LISTEN "channel"` (the name is quoted, case preserved).
    public func listen(channel: String) throws(PostgresError) {
        try executeScript("LISTEN \(try PostgresIdentifier.quoteName(channel))", name: "listen")
    }

    /// `UNLISTEN "channel"`.
    public func unlisten(channel: String) throws(PostgresError) {
        try executeScript("UNLISTEN \(try PostgresIdentifier.quoteName(channel))", name: "unlisten")
    }

    /// Sends a notification with `pg_notify($1, $2)` (delivered when the current transaction commits).
    public func notify(channel: String, payload: String = "") throws(PostgresError) {
        try query("SELECT pg_notify($1, $2)", [.text(channel), .text(payload)], name: "notify")
    }

    /// The connection's socket (`PQsocket`), for an event loop to watch for readability; -1 when closed.
    /// The connection keeps owning it: never close it, and unregister it before closing the connection.
    public var socketDescriptor: Int32 {
        guard let handle else { return -1 }
        return PQsocket(handle)
    }

    /// Reads whatever the socket has without blocking (`PQconsumeInput`); throws when the connection broke.
    public func consumeInput() throws(PostgresError) {
        let handle = try liveHandle(name: "consumeInput")
        guard PQconsumeInput(handle) == 1 else { throw connectionError(name: "consumeInput") }
    }

    /// Returns the notifications libpq has already read, oldest first (`PQnotifies`, each freed with
    /// `PQfreemem`). Does no IO: call `consumeInput()` first when the socket was readable.
    public func drainNotifications() -> [PostgresNotification] {
        guard let handle else { return [] }
        var notifications: [PostgresNotification] = []
        while let notify = PQnotifies(handle) {
            defer { PQfreemem(notify) }
            notifications.append(
                PostgresNotification(
                    channel: String(cString: notify.pointee.relname),
                    payload: notify.pointee.extra.map { String(cString: $0) } ?? "",
                    backendPID: notify.pointee.be_pid))
        }
        return notifications
    }

    /// Blocks this thread until at least one notification arrives or `timeout` passes; returns what arrived
    /// (empty on timeout). For dedicated threads only, never an event loop.
    public func waitForNotifications(timeout: Duration) throws(PostgresError) -> [PostgresNotification] {
        let handle = try liveHandle(name: "waitForNotifications")
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            try consumeInput()
            let notifications = drainNotifications()
            if !notifications.isEmpty { return notifications }
            let remaining = clock.now.duration(to: deadline)
            if remaining <= .zero { return [] }
            let (seconds, attoseconds) = remaining.components
            let milliseconds = min(Int64(Int32.max), seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
            _ = try waitForSocket(handle, readable: true, writable: false, timeoutMilliseconds: Int32(milliseconds))
        }
    }

    /// A cheap liveness check for an idle connection: reads anything pending without blocking and parses it, so
    /// a backend that was terminated is noticed before a job runs on it. The server sends its FATAL
    /// "terminating connection" message before it disappears from `pg_stat_activity` and before the socket
    /// closes; libpq reports that message on an idle connection as a notice, which our receiver records.
    /// False when broken.
    public func checkIdleConnection() -> Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return false }
        for _ in 0..<4 {
            guard let ready = try? waitForSocket(handle, readable: true, writable: false, timeoutMilliseconds: 0),
                ready.isReadable
            else { break }
            if PQconsumeInput(handle) == 0 { return false }
            _ = PQisBusy(handle)  // parses what was read: notifications are queued, a FATAL becomes a notice
        }
        return PQstatus(handle) == CONNECTION_OK && fatalNoticeSeen.pointee == 0
    }
}
