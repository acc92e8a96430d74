@testable import StarlingHTTP2
import Testing

/// A server stream's state machine, event in and action out, line by line: header and body limits, early
/// answers, routing, handlers and the request deadline, without a connection.
@Suite("server stream state machine")
struct ServerStreamStateMachineTests {
    typealias Machine = ServerStream.StateMachine

    static let maxHeaderListBytes = 100
    static let maxBodyBytes = 1000

    @Test func aRequestIsRoutedOnceComplete() {
        // Proves headers and body within the limits are kept, the end of the request routes it, and an inline
        // answer completes the stream.
        var machine = Machine()
        #expect(machine.headerReceived(fieldBytes: 10, maxHeaderListBytes: Self.maxHeaderListBytes) == .store)
        #expect(machine.headerBytes == 42)
        #expect(machine.headersEnded(declaredLength: 1000, maxBodyBytes: Self.maxBodyBytes) == .none)
        #expect(machine.dataReceived(count: 600, bodyBytes: 0, maxBodyBytes: Self.maxBodyBytes) == .store)
        #expect(machine.dataReceived(count: 400, bodyBytes: 600, maxBodyBytes: Self.maxBodyBytes) == .store)
        #expect(!machine.isRequestComplete)
        #expect(machine.requestEnded() == .route)
        machine.routedAnswered()
        #expect(machine.phase == .answered && machine.isRequestComplete)
        #expect(machine.requestEnded() == .none)
        #expect(machine.dataReceived(count: 1, bodyBytes: 0, maxBodyBytes: Self.maxBodyBytes) == .drop)
    }

    @Test func aHandlerOwnsTheStreamUntilItAnswers() {
        // Proves a stream handed to a handler takes no early answer and no deadline, and is answered when the
        // handler finishes.
        var machine = Machine()
        #expect(machine.requestEnded() == .route)
        machine.handlerStarted()
        #expect(machine.phase == .handling && machine.isRequestComplete)
        #expect(machine.deadlinePassed() == .none)
        #expect(machine.dataReceived(count: 5000, bodyBytes: 0, maxBodyBytes: Self.maxBodyBytes) == .drop)
        machine.handlerFinished()
        #expect(machine.phase == .answered)
    }

    @Test func anOversizedHeaderListIsRefusedWith431() {
        // Proves the header list is counted as HTTP/2 does (+32 per field); past the limit the rest is dropped
        // and the stream is refused when its headers end, early or with the end of the request.
        var early = Machine()
        #expect(early.headerReceived(fieldBytes: 30, maxHeaderListBytes: Self.maxHeaderListBytes) == .store)
        #expect(early.headerReceived(fieldBytes: 30, maxHeaderListBytes: Self.maxHeaderListBytes) == .drop)
        #expect(early.phase == .headersTooLarge)
        #expect(early.headerReceived(fieldBytes: 1, maxHeaderListBytes: Self.maxHeaderListBytes) == .drop)
        #expect(early.headersEnded(declaredLength: nil, maxBodyBytes: Self.maxBodyBytes) == .refuse(.headersTooLarge))
        #expect(early.phase == .answeredEarly && !early.isRequestComplete)
        #expect(early.dataReceived(count: 10, bodyBytes: 0, maxBodyBytes: Self.maxBodyBytes) == .drop)
        #expect(early.requestEnded() == .none)
        #expect(early.phase == .answered)

        var whole = Machine()
        #expect(whole.headerReceived(fieldBytes: 68, maxHeaderListBytes: Self.maxHeaderListBytes) == .store)
        #expect(whole.headerReceived(fieldBytes: 0, maxHeaderListBytes: Self.maxHeaderListBytes) == .drop)
        #expect(whole.requestEnded() == .refuse(.headersTooLarge))
        #expect(whole.phase == .answered)
    }

    @Test(arguments: [(nil, false), (999, false), (1000, false), (1001, true)] as [(Int?, Bool)])
    func aDeclaredLengthPastTheLimitIsRefusedAtOnce(declared: Int?, isRefused: Bool) {
        // Proves a content-length past the body limit is answered 413 when the headers end, before any body.
        var machine = Machine()
        let action = machine.headersEnded(declaredLength: declared, maxBodyBytes: Self.maxBodyBytes)
        #expect(action == (isRefused ? .refuse(.declaredBodyTooLarge(declared ?? 0)) : .none))
        #expect(machine.phase == (isRefused ? .answeredEarly : .receiving))
    }

    @Test func aBodyPastTheLimitIsRefusedAndTheRestDropped() {
        // Proves the chunk that takes the body past the limit answers 413 and everything after it is dropped
        // until the request ends.
        var machine = Machine()
        #expect(machine.dataReceived(count: 1000, bodyBytes: 0, maxBodyBytes: Self.maxBodyBytes) == .store)
        #expect(machine.dataReceived(count: 1, bodyBytes: 1000, maxBodyBytes: Self.maxBodyBytes)
            == .refuse(.bodyTooLarge))
        #expect(machine.dataReceived(count: 1, bodyBytes: 0, maxBodyBytes: Self.maxBodyBytes) == .drop)
        #expect(machine.requestEnded() == .none)
        #expect(machine.isRequestComplete)
    }

    @Test func theDeadlineAnswers408ThenResets() {
        // Proves a request still arriving at its deadline is answered 408, and one still sending at the next
        // deadline after an early answer is reset; complete streams are left alone.
        var machine = Machine()
        #expect(machine.deadlinePassed() == .refuse(.timedOut))
        #expect(machine.phase == .answeredEarly && !machine.isRequestComplete)
        #expect(machine.deadlinePassed() == .reset)
        #expect(machine.isRequestComplete)
        #expect(machine.deadlinePassed() == .none)

        var tooLarge = Machine()
        _ = tooLarge.headerReceived(fieldBytes: 200, maxHeaderListBytes: Self.maxHeaderListBytes)
        #expect(tooLarge.deadlinePassed() == .refuse(.timedOut))
        #expect(tooLarge.headersEnded(declaredLength: nil, maxBodyBytes: Self.maxBodyBytes) == .none)
    }
}
