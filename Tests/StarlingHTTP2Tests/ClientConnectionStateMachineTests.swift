@testable import StarlingHTTP2
import Testing

/// The client connection's state machine, event in and action out, line by line: no socket, no session. The IO
/// half is exercised by the client/server, interop and lifecycle suites.
@Suite("client connection state machine")
struct ClientConnectionStateMachineTests {
    typealias Machine = HTTP2ClientConnection.StateMachine

    /// A machine whose session is up.
    static func active() -> Machine {
        var machine = Machine()
        _ = machine.channelActivated()
        _ = machine.sessionStarted()
        return machine
    }

    @Test func theSessionStartsOnceTheChannelIsActive() {
        // Proves the session is created when the channel turns active, announced once it exists, and that
        // bytes are handed to nghttp2 only from then on.
        var machine = Machine()
        #expect(machine.state == .connecting)
        #expect(!machine.isActive)
        #expect(machine.bytesReceived() == .none)
        #expect(machine.sessionStarted() == .none)
        #expect(machine.channelActivated() == .startSession)
        #expect(machine.state == .starting)
        #expect(machine.bytesReceived() == .none)
        #expect(machine.channelActivated() == .none)
        #expect(machine.sessionStarted() == .announce)
        #expect(machine.isActive)
        #expect(machine.bytesReceived() == .receive)
        #expect(machine.sessionStarted() == .none)
    }

    @Test func aSessionThatCannotStartCloses() {
        // Proves a failed session creation closes the connection, and nothing is announced afterwards.
        var machine = Machine()
        _ = machine.channelActivated()
        #expect(machine.sessionFailed() == .close)
        #expect(machine.state == .closed)
        #expect(machine.sessionStarted() == .none)
        #expect(machine.channelClosed() == .failStreams)
    }

    @Test func badInputFromTheServerClosesOnce() {
        // Proves refused input closes after writing nghttp2's GOAWAY, once; later bytes are ignored.
        var machine = Self.active()
        #expect(machine.receiveFailed() == .closeAfterProtocolError)
        #expect(!machine.isActive)
        #expect(machine.receiveFailed() == .none)
        #expect(machine.bytesReceived() == .none)
        #expect(machine.inputClosed() == .none)
    }

    @Test func theServerClosingItsSideClosesTheConnection() {
        // Proves a half-close by the server closes at once (open streams cannot get their answers), once.
        var machine = Self.active()
        #expect(machine.inputClosed() == .close)
        #expect(machine.inputClosed() == .none)
        #expect(machine.channelClosed() == .failStreams)
        #expect(machine.state == .closed)
    }

    @Test(arguments: [
        (false, false, false, Machine.Action.closeAfterFlush),
        (true, false, false, .none), (false, true, false, .none), (false, false, true, .none),
        (true, true, true, .none),
    ])
    func anIdleConnectionClosesAfterItsOutput(
        wantsRead: Bool, wantsWrite: Bool, hasStreams: Bool, expected: Machine.Action
    ) {
        // Proves the connection closes after the flush only when nghttp2 wants nothing and no stream is open.
        let machine = Self.active()
        #expect(
            machine.outputProduced(sessionWantsRead: wantsRead, sessionWantsWrite: wantsWrite, hasStreams: hasStreams)
                == expected)
    }

    @Test func aClosedOrStartingConnectionNeverClosesForIdleness() {
        // Proves the idle close applies to an active connection only.
        var machine = Machine()
        #expect(machine.outputProduced(sessionWantsRead: false, sessionWantsWrite: false, hasStreams: false) == .none)
        _ = machine.channelClosed()
        #expect(machine.outputProduced(sessionWantsRead: false, sessionWantsWrite: false, hasStreams: false) == .none)
    }

    @Test func theChannelClosingFailsTheStreamsFromAnyState() {
        // Proves every state reports the close, so open requests always get an answer.
        var connecting = Machine()
        #expect(connecting.channelClosed() == .failStreams)
        var starting = Machine()
        _ = starting.channelActivated()
        #expect(starting.channelClosed() == .failStreams)
        var active = Self.active()
        #expect(active.channelClosed() == .failStreams)
        #expect(active.channelActivated() == .none)
    }

    @Test(arguments: [
        (false, UInt32(0x0), true, Machine.StreamOutcome.complete),
        (false, 0x0, false, .reset),  // ended without a :status
        (false, 0x7, true, .refused),
        (false, 0x7, false, .refused),
        (false, 0x8, true, .reset),  // CANCEL
        (false, 0x2, true, .reset),  // INTERNAL_ERROR
        (true, 0x0, true, .bodyTooLarge),
        (true, 0x7, false, .bodyTooLarge),
    ])
    func aClosedStreamsOutcome(isTooLarge: Bool, errorCode: UInt32, hasStatus: Bool, expected: Machine.StreamOutcome) {
        // Proves how each stream end is answered: only REFUSED_STREAM may be retried, a cut-off body wins.
        #expect(Machine.streamClosed(isTooLarge: isTooLarge, errorCode: errorCode, hasStatus: hasStatus) == expected)
    }

    @Test(arguments: [(0, 10, 10, Machine.DataAction.append), (5, 5, 10, .append), (5, 6, 10, .resetTooLarge),
                      (0, 11, 10, .resetTooLarge), (10, 0, 10, .append)])
    func aResponseBodyIsBounded(body: Int, chunk: Int, max: Int, expected: Machine.DataAction) {
        // Proves a response body may reach the limit exactly, and one byte past it resets the stream.
        #expect(Machine.dataReceived(bodyBytes: body, chunkBytes: chunk, maxResponseBytes: max) == expected)
    }
}
