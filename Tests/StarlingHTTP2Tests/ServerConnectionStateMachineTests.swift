@testable import StarlingHTTP2
import Testing

/// The server connection's state machine, event in and action out, line by line: no socket, no session, no
/// clock (time is passed in). The IO half is exercised by the client/server, curl, abuse and lifecycle suites.
@Suite("server connection state machine")
struct ServerConnectionStateMachineTests {
    typealias Machine = HTTP2ServerConnection.StateMachine

    static let second: UInt64 = 1_000_000_000

    static var limits: HTTP2Limits {
        var limits = HTTP2Limits()
        limits.maxClientResetsPerSecond = 3
        limits.maxControlFramesPerSecond = 2
        limits.maxRefusedStreams = 2
        limits.handshakeTimeout = .seconds(10)
        limits.idleTimeout = .seconds(120)
        return limits
    }

    /// A machine whose session is up and whose client sent the preface, at time 0.
    static func open() -> Machine {
        var machine = Machine(limits: limits, acceptedAt: 0)
        _ = machine.channelActivated()
        _ = received(&machine, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        return machine
    }

    static func received(_ machine: inout Machine, _ text: String) -> Machine.Action {
        Array(text.utf8).withUnsafeBytes { machine.bytesReceived($0) }
    }

    @Test func thePrefaceOpensTheConnection() {
        // Proves the session starts once the channel is active, bytes before that are ignored, and the first
        // bytes of an HTTP/2 client open the connection; later bytes all go to nghttp2.
        var machine = Machine(limits: Self.limits, acceptedAt: 0)
        #expect(machine.state == .accepted)
        #expect(Self.received(&machine, "PRI * HTTP/2.0\r\n") == .none)
        #expect(machine.channelActivated() == .startSession)
        #expect(machine.state == .awaitingPreface)
        #expect(machine.channelActivated() == .none)
        #expect(Self.received(&machine, "PRI * HTTP/2.0\r\n") == .receive)
        #expect(machine.state == .open)
        #expect(Self.received(&machine, "GET / HTTP/1.1\r\n") == .receive)
        #expect(machine.state == .open)
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\n", true), ("POST /v1/changes HTTP/1.1\r\n", true), ("OPTIONS * HTTP/1.0", true),
        ("DELETE /x", true), ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false), ("PRI ", false), ("GET", false),
        ("get / HTTP/1.1", false), ("GE /", false), ("SOMELONGER / HTTP/1.1", false), ("GET/", false),
        ("\u{0}\u{0}\u{0}\u{4}", false),
    ])
    func http1IsRefusedBeforeThePreface(first: String, isHTTP1: Bool) {
        // Proves an HTTP/1 request line as the first bytes closes the connection with a 505, and anything else
        // (the preface, too few bytes, lower case, a long token) goes to nghttp2 to judge.
        var machine = Machine(limits: Self.limits, acceptedAt: 0)
        #expect(machine.channelActivated() == .startSession)
        #expect(Self.received(&machine, first) == (isHTTP1 ? .refuseHTTP1 : .receive))
        #expect(machine.state == (isHTTP1 ? .closed : .open))
    }

    @Test func badInputClosesAfterTheFlush() {
        // Proves input nghttp2 refuses closes the connection after its GOAWAY is flushed, that a graceful
        // shutdown then sends no second GOAWAY, and that the closed channel ignores what follows.
        var machine = Self.open()
        #expect(machine.receiveFailed() == .closeAfterProtocolError)
        #expect(machine.state == .goingAway)
        #expect(machine.shutdownRequested(hasStreams: false) == .none)
        #expect(machine.resetReceived(now: 1) == .none)
        machine.channelClosed()
        #expect(machine.state == .closed)
        #expect(Self.received(&machine, "PRI ") == .none)
        #expect(machine.receiveFailed() == .none)
        #expect(machine.sweepStarted(now: 100 * Self.second) == .none)
        #expect(machine.outputProduced(sessionWantsWrite: false, sessionWantsRead: false, isInputClosed: true) == .none)
    }

    @Test func rapidResetIsTerminatedOnceWithinOneSecond() {
        // Proves resets are counted per one-second window: up to the limit nothing happens, one more is a
        // GOAWAY(ENHANCE_YOUR_CALM) once, and a new window starts the count again.
        var machine = Self.open()
        #expect(machine.resetReceived(now: 1) == .none)
        #expect(machine.resetReceived(now: 2) == .none)
        #expect(machine.resetReceived(now: 3) == .none)
        // A new window: the count starts again.
        #expect(machine.resetReceived(now: Self.second + 10) == .none)
        #expect(machine.resetReceived(now: Self.second + 11) == .none)
        #expect(machine.resetReceived(now: Self.second + 12) == .none)
        #expect(machine.resetReceived(now: Self.second + 13) == .terminate(.rapidReset))
        #expect(machine.state == .goingAway)
        #expect(machine.resetReceived(now: Self.second + 14) == .none)
    }

    @Test func settingsAndPingFloodsShareTheirWindow() {
        // Proves SETTINGS/PING frames beyond their per-second limit end the connection, counted apart from resets.
        var machine = Self.open()
        #expect(machine.controlFrameReceived(now: 1) == .none)
        #expect(machine.resetReceived(now: 2) == .none)
        #expect(machine.controlFrameReceived(now: 3) == .none)
        #expect(machine.controlFrameReceived(now: 4) == .terminate(.controlFrameFlood))
        #expect(machine.controlFrameReceived(now: 5) == .none)
    }

    @Test func refusedStreamsBeyondTheLimitEndTheConnection() {
        // Proves refused streams are counted for the connection's life (no window) and one past the limit ends it.
        var machine = Self.open()
        #expect(machine.streamRefused() == .none)
        #expect(machine.resetReceived(now: 100 * Self.second) == .none)
        #expect(machine.streamRefused() == .none)
        #expect(machine.streamRefused() == .terminate(.refusedStreams))
        #expect(machine.state == .goingAway)
    }

    @Test func abuseBeforeThePrefaceIsTerminatedAndAfterAGoAwayIsNot() {
        // Proves a client flooding before its preface is sent away too, and one already going away (graceful
        // shutdown) is left to finish rather than sent a second GOAWAY.
        var early = Machine(limits: Self.limits, acceptedAt: 0)
        #expect(early.streamRefused() == .none)  // no session: counted, nothing to send
        _ = early.channelActivated()
        #expect(early.streamRefused() == .none)
        #expect(early.streamRefused() == .terminate(.refusedStreams))
        var leaving = Self.open()
        #expect(leaving.shutdownRequested(hasStreams: true) == .sendGoAway(closeWhenFlushed: false))
        for now in UInt64(1)...10 { #expect(leaving.controlFrameReceived(now: now) == .none) }
    }

    @Test func handlersKeepTheConnectionOpen() {
        // Proves the connection closes after its output only when no handler is running, and a handler's answer
        // is submitted while its stream is open and dropped once the stream or the connection is gone.
        var machine = Self.open()
        machine.handlerStarted()
        machine.handlerStarted()
        #expect(machine.runningHandlers == 2)
        #expect(machine.outputProduced(sessionWantsWrite: false, sessionWantsRead: false, isInputClosed: true) == .none)
        #expect(machine.handlerFinished(isStreamOpen: true) == .submitResponse)
        #expect(machine.outputProduced(sessionWantsWrite: false, sessionWantsRead: false, isInputClosed: true) == .none)
        #expect(machine.handlerFinished(isStreamOpen: false) == .dropResponse)
        #expect(machine.runningHandlers == 0)
        #expect(machine.outputProduced(sessionWantsWrite: false, sessionWantsRead: false, isInputClosed: true)
            == .closeAfterFlush)
        machine.handlerStarted()
        machine.channelClosed()
        #expect(machine.handlerFinished(isStreamOpen: true) == .dropResponse)
    }

    @Test(arguments: [
        // (handler running, session wants write, session wants read, input closed) → closes
        (false, false, false, false, true), (false, false, true, false, false), (false, false, true, true, true),
        (false, true, false, false, false), (false, true, true, true, false), (true, false, false, false, false),
        (true, false, true, true, false),
    ])
    func closesWhenNothingIsLeftToDo(handler: Bool, wantsWrite: Bool, wantsRead: Bool, inputClosed: Bool,
                                     closes: Bool) {
        // Proves the close rule: nghttp2 has nothing to write, and it wants no more input or the client
        // half-closed, and no handler still has to answer.
        var machine = Self.open()
        if handler { machine.handlerStarted() }
        let action = machine.outputProduced(sessionWantsWrite: wantsWrite, sessionWantsRead: wantsRead,
                                            isInputClosed: inputClosed)
        #expect(action == (closes ? .closeAfterFlush : .none))
    }

    @Test func gracefulShutdownSendsOneGoAway() {
        // Proves a graceful shutdown sends one GOAWAY, closing at once only when nothing is in flight, and does
        // nothing before the session exists or after the close.
        var idle = Self.open()
        #expect(idle.shutdownRequested(hasStreams: false) == .sendGoAway(closeWhenFlushed: true))
        #expect(idle.state == .goingAway)
        #expect(idle.shutdownRequested(hasStreams: false) == .none)
        var busy = Self.open()
        busy.handlerStarted()
        #expect(busy.shutdownRequested(hasStreams: false) == .sendGoAway(closeWhenFlushed: false))
        var streaming = Self.open()
        #expect(streaming.shutdownRequested(hasStreams: true) == .sendGoAway(closeWhenFlushed: false))
        var waiting = Machine(limits: Self.limits, acceptedAt: 0)
        _ = waiting.channelActivated()
        #expect(waiting.shutdownRequested(hasStreams: false) == .sendGoAway(closeWhenFlushed: true))
        var fresh = Machine(limits: Self.limits, acceptedAt: 0)
        #expect(fresh.shutdownRequested(hasStreams: false) == .none)
        var closed = Self.open()
        closed.channelClosed()
        #expect(closed.shutdownRequested(hasStreams: false) == .none)
    }

    @Test func theHandshakeHasADeadline() {
        // Proves a client that has not sent its preface within the handshake timeout (counted from the accept)
        // is closed by the sweep, before and after the TLS handshake alike, and an open one is not.
        let acceptedAt: UInt64 = 5 * Self.second
        var accepted = Machine(limits: Self.limits, acceptedAt: acceptedAt)
        #expect(accepted.sweepStarted(now: acceptedAt + 10 * Self.second) == .none)
        #expect(accepted.sweepStarted(now: acceptedAt + 10 * Self.second + 1) == .closeTimedOut)
        _ = accepted.channelActivated()
        #expect(accepted.sweepStarted(now: acceptedAt + 9 * Self.second) == .none)
        #expect(accepted.sweepStarted(now: acceptedAt + 11 * Self.second) == .closeTimedOut)
        var open = Self.open()
        #expect(open.sweepStarted(now: 3600 * Self.second) == .checkStreamDeadlines)
        #expect(open.shutdownRequested(hasStreams: true) == .sendGoAway(closeWhenFlushed: false))
        #expect(open.sweepStarted(now: 3600 * Self.second) == .checkStreamDeadlines)
    }

    @Test func anIdleConnectionIsSentAway() {
        // Proves the sweep sends a GOAWAY (closing after it) to a connection idle past the idle timeout, and
        // never to one with a stream open or a handler running, or one already going away.
        let idleTimeout = 120 * Self.second
        var machine = Self.open()
        #expect(machine.sweepFinished(now: idleTimeout, lastActivity: 0, hasStreams: false) == .none)
        #expect(machine.sweepFinished(now: idleTimeout + 1, lastActivity: 0, hasStreams: true) == .none)
        machine.handlerStarted()
        #expect(machine.sweepFinished(now: idleTimeout + 1, lastActivity: 0, hasStreams: false) == .none)
        #expect(machine.handlerFinished(isStreamOpen: false) == .dropResponse)
        #expect(machine.sweepFinished(now: idleTimeout + 1, lastActivity: 0, hasStreams: false)
            == .sendGoAway(closeWhenFlushed: true))
        #expect(machine.sweepFinished(now: 2 * idleTimeout, lastActivity: 0, hasStreams: false) == .none)
    }
}
