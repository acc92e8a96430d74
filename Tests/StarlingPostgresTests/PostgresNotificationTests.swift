import Glibc
import StarlingPostgres
import StarlingTestSupport
import Testing

@Suite(.timeLimit(.minutes(2)))
struct PostgresNotificationTests {
    /// Proves a NOTIFY makes the listener's socket readable (poll, as an event loop would use epoll) and is then
    /// delivered by consumeInput + drainNotifications with channel, payload and sender PID.
    @Test func notificationIsVisibleThroughTheSocket() async throws {
        try await TestDatabase.with { db in
            let listener = try db.connect()
            let notifier = try db.connect()
            try listener.listen(channel: "Starling Events")
            #expect(listener.drainNotifications().isEmpty)
            try notifier.notify(channel: "Starling Events", payload: "it's \"42\" ✓")

            var descriptor = pollfd(fd: listener.socketDescriptor, events: Int16(POLLIN), revents: 0)
            #expect(descriptor.fd >= 0)
            let ready = poll(&descriptor, 1, 10_000)
            #expect(ready == 1)
            #expect(descriptor.revents & Int16(POLLIN) != 0)
            try listener.consumeInput()
            let notifications = listener.drainNotifications()
            #expect(
                notifications == [
                    PostgresNotification(
                        channel: "Starling Events", payload: "it's \"42\" ✓",
                        backendPID: notifier.backendPID)
                ])
            #expect(listener.drainNotifications().isEmpty)
        }
    }

    /// Proves waitForNotifications returns delivered notifications in order, and nothing once the timeout passes;
    /// notifications sent inside a transaction arrive only at commit.
    @Test func waitForNotificationsBlocksUntilDeliveryOrTimeout() async throws {
        try await TestDatabase.with { db in
            let listener = try db.connect()
            let notifier = try db.connect()
            try listener.listen(channel: "changes")
            #expect(try listener.waitForNotifications(timeout: .milliseconds(50)).isEmpty)
            try notifier.transaction { connection in
                try connection.notify(channel: "changes", payload: "1")
                try connection.notify(channel: "changes", payload: "2")
                #expect(try listener.waitForNotifications(timeout: .milliseconds(50)).isEmpty)
            }
            var payloads: [String] = []
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: .seconds(10))
            while payloads.count < 2 && clock.now < deadline {
                payloads += try listener.waitForNotifications(timeout: .seconds(1)).map(\.payload)
            }
            #expect(payloads == ["1", "2"])
            try listener.unlisten(channel: "changes")
            try listener.listen(channel: "sentinel")
            try notifier.notify(channel: "changes", payload: "3")
            try notifier.notify(channel: "sentinel")
            var after: [PostgresNotification] = []
            while !after.contains(where: { $0.channel == "sentinel" }) && clock.now < deadline {
                after += try listener.waitForNotifications(timeout: .seconds(1))
            }
            #expect(after.map(\.channel) == ["sentinel"])
        }
    }
}
