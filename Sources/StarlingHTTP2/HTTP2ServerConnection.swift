import CNGHTTP2
import Logging
import StarlingIO

/// One accepted HTTP/2 connection: an nghttp2 server session over a socket channel, confined to its loop.
///
/// This class is the IO half: it owns the session, the channel and the streams, turns their callbacks into
/// events for its ``StateMachine`` and runs the actions that come back. The connection-level decisions (the
/// preface check, abuse limits, GOAWAY, when to close, deadlines) are the state machine's; gzip is
/// ``BodyCoding``'s; matching routes is the ``Router``'s.
///
/// Requests are gathered per stream; when one is complete it is routed. `immediate` handlers run inline,
/// `async` handlers run as tasks owned by the loop context (``ServerLoopContext/handlerStarted(_:)``): a task
/// is cancelled when its stream or this connection goes, and the server's shutdown awaits it. Its response comes
/// back through `loop.execute`. The connection stays open while any handler is running; the loop never waits.
///
/// Abuse (rapid reset, SETTINGS/PING floods, refused-stream storms, nghttp2-detected floods) ends in GOAWAY
/// and close for this connection only.
final class HTTP2ServerConnection: SocketChannelDelegate, NGHTTP2SessionDelegate {
    let id: UInt64
    let channel: SocketChannel
    /// The loop context holds every connection it created until it closes: it outlives this object.
    private unowned(unsafe) let context: ServerLoopContext
    private var stateMachine: StateMachine
    /// Exists from `channelActive` until the channel closes (or HTTP/1 is refused).
    private var session: NGHTTP2Session?
    private var streams: [Int32: ServerStream] = [:]
    /// Frames gathered from nghttp2 before one write to the channel; capacity kept between calls.
    private var outputScratch: [UInt8] = []

    init(id: UInt64, channel: SocketChannel, context: ServerLoopContext) {
        self.id = id
        self.channel = channel
        self.context = context
        self.stateMachine = StateMachine(limits: context.limits, acceptedAt: Syscall.monotonicNanos())
    }

    /// No stream open and no handler running.
    var isIdle: Bool { streams.isEmpty && stateMachine.runningHandlers == 0 }

    // MARK: - Channel events

    func channelActive(_ channel: SocketChannel) {
        run(stateMachine.channelActivated())
    }

    func channelRead(_ channel: SocketChannel, _ bytes: UnsafeRawBufferPointer) {
        switch stateMachine.bytesReceived(bytes) {
        case .receive:
            guard let session else { return }
            let consumed = session.receive(bytes)
            if consumed < 0 {
                context.logger.debug("bad HTTP/2 input", metadata: [
                    "conn.id": "\(id)", "h2.error": "\(NGHTTP2Session.describe(consumed))"])
                run(stateMachine.receiveFailed())
            }
        case let action:
            run(action)
        }
    }

    func channelReadyForOutput(_ channel: SocketChannel) {
        produceOutput()
    }

    /// The client half-closed after its requests: answer them all, then close (see `produceOutput`).
    func channelInputClosed(_ channel: SocketChannel) {
        produceOutput()
    }

    func channelClosed(_ channel: SocketChannel, error: HTTP2Error?) {
        if let error {
            if error.code == .tlsFailed { context.counters.tlsFailures.add(1) }
            context.logger.debug("connection closed", metadata: ["conn.id": "\(id)", "error": "\(error)"])
        }
        stateMachine.channelClosed()
        // Nobody is left to answer: the handlers still running are cancelled (their answers are dropped).
        for stream in streams.values { stream.handlerID.map(context.cancelHandler) }
        streams.removeAll()
        session = nil
        context.connectionClosed(self)
    }

    // MARK: - Session events

    func sessionBeginHeaders(streamID: Int32, category: nghttp2_headers_category) -> Int32 {
        guard category == NGHTTP2_HCAT_REQUEST else { return 0 }
        streams[streamID] = ServerStream(startedAt: Syscall.monotonicNanos())
        return 0
    }

    func sessionHeader(streamID: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) -> Int32 {
        guard let stream = streams[streamID],
              case .store = stream.state.headerReceived(fieldBytes: name.count + value.count,
                                                        maxHeaderListBytes: context.limits.maxHeaderListBytes)
        else { return 0 }
        // nghttp2 has validated the field (lower-case names, pseudo-headers first and known).
        if name.first == UInt8(ascii: ":") {
            if name.count == 5 && name[1] == UInt8(ascii: "p") {
                stream.path = String(decoding: value, as: UTF8.self)
            } else if name.count == 7 && name[1] == UInt8(ascii: "m") {
                stream.method = String(decoding: value, as: UTF8.self)
            }
            return 0
        }
        stream.headers.append(lowercasedName: String(decoding: name, as: UTF8.self),
                              value: String(decoding: value, as: UTF8.self))
        return 0
    }

    func sessionFrameReceived(type: UInt8, flags: UInt8, streamID: Int32, errorCode: UInt32) -> Int32 {
        let endStream = flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch Int(type) {
        case Int(NGHTTP2_HEADERS.rawValue):
            guard let stream = streams[streamID] else { return 0 }
            if endStream {
                run(stream.state.requestEnded(), streamID, stream)
            } else {
                let declared = stream.headers["content-length"].flatMap { Int($0) }
                let maxBodyBytes = context.limits.maxRequestBodyBytes
                run(stream.state.headersEnded(declaredLength: declared, maxBodyBytes: maxBodyBytes), streamID, stream)
            }
        case Int(NGHTTP2_DATA.rawValue):
            if endStream, let stream = streams[streamID] { run(stream.state.requestEnded(), streamID, stream) }
        case Int(NGHTTP2_RST_STREAM.rawValue):
            run(stateMachine.resetReceived(now: Syscall.monotonicNanos()))
        case Int(NGHTTP2_SETTINGS.rawValue), Int(NGHTTP2_PING.rawValue):
            if flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 {
                run(stateMachine.controlFrameReceived(now: Syscall.monotonicNanos()))
            }
        default:
            break
        }
        return 0
    }

    func sessionDataChunk(streamID: Int32, _ data: UnsafeBufferPointer<UInt8>) -> Int32 {
        guard let stream = streams[streamID] else { return 0 }
        switch stream.state.dataReceived(count: data.count, bodyBytes: stream.body.count,
                                         maxBodyBytes: context.limits.maxRequestBodyBytes) {
        case .store: stream.body.append(contentsOf: data)
        case let action: run(action, streamID, stream)
        }
        return 0
    }

    func sessionStreamClosed(streamID: Int32, errorCode: UInt32) -> Int32 {
        // A stream reset while its handler runs: the answer has nowhere to go, so the handler is cancelled.
        if let stream = streams.removeValue(forKey: streamID), let handlerID = stream.handlerID {
            context.cancelHandler(handlerID)
        }
        return 0
    }

    func sessionReadBody(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, isEnd: Bool) {
        guard let stream = streams[streamID] else { return (0, true) }
        let remaining = stream.responseBody.count - stream.responseOffset
        let count = min(remaining, buffer.count)
        if count > 0 {
            stream.responseBody.withUnsafeBytes { source in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[stream.responseOffset..<stream.responseOffset + count]))
            }
            stream.responseOffset += count
        }
        let isEnd = stream.responseOffset == stream.responseBody.count
        if isEnd { stream.responseBody = [] }
        return (count, isEnd)
    }

    // MARK: - Requests

    /// The request is complete: answer it on the loop or hand it to a handler task.
    private func route(_ streamID: Int32, _ stream: ServerStream) {
        let request: HTTPRequest
        do {
            request = try stream.makeRequest(peer: channel.peer)
        } catch {
            stream.state.routedAnswered()
            submit(streamID, stream, error.response)
            return
        }
        stream.requestMethod = request.method
        stream.requestPath = request.path
        stream.acceptEncoding = request.headers["accept-encoding"]
        switch context.router.route(request) {
        case .respond(let response):
            stream.state.routedAnswered()
            submit(streamID, stream, response)
        case .run(let handler, let routed):
            dispatch(streamID, stream, handler, routed)
        }
    }

    private func dispatch(_ streamID: Int32, _ stream: ServerStream, _ handler: Router.Handler, _ request: HTTPRequest) {
        let isEncoded = request.headers["content-encoding"] != nil
        if case .immediate(let body) = handler, !isEncoded {
            let response: HTTPResponse
            do { response = try body(request) } catch { response = context.errorResponse(error, request) }
            stream.state.routedAnswered()
            submit(streamID, stream, response)
            return
        }
        // Everything that may take time — the handler, inflating the request, deflating the response — runs in a
        // task, never on the loop. The loop context owns the task (cancelled with its stream or this connection,
        // awaited by the server's shutdown); the connection stays open until the response comes back.
        stateMachine.handlerStarted()
        stream.state.handlerStarted()  // no early 413/408 once a handler owns the stream
        context.counters.handlersRunning.add(1)
        let bound = LoopBound(self, loop: channel.loop)
        let errorResponse = context.errorResponder
        let maxBodyBytes = context.limits.maxRequestBodyBytes
        let gzipMinimumBytes = context.limits.gzipMinimumBytes
        let acceptEncoding = stream.acceptEncoding
        let run: @Sendable (HTTPRequest) async throws -> HTTPResponse
        switch handler {
        case .immediate(let body): run = { try body($0) }
        case .async(let body): run = body
        }
        stream.handlerID = context.handlerStarted { handlerID in
            Task {
                let encoded = await BodyCoding.respond(
                    to: request, with: run, maxBodyBytes: maxBodyBytes, acceptEncoding: acceptEncoding,
                    gzipMinimumBytes: gzipMinimumBytes, errorResponse: errorResponse)
                bound.execute { connection in connection.handlerFinished(streamID, handlerID, encoded) }
            }
        }
    }

    private func handlerFinished(_ streamID: Int32, _ handlerID: UInt64, _ response: HTTPResponse) {
        context.handlerFinished(handlerID)
        context.counters.handlersRunning.add(-1)
        let stream = streams[streamID]
        switch stateMachine.handlerFinished(isStreamOpen: stream != nil && session != nil) {
        case .submitResponse:
            guard let stream else { break }
            stream.handlerID = nil
            stream.state.handlerFinished()
            submit(streamID, stream, response)
            produceOutput()
            channel.flush()
        default:
            break
        }
        context.afterHandler(self)
    }

    /// Submits the response (gzip when it pays off) and logs the access line.
    private func submit(_ streamID: Int32, _ stream: ServerStream, _ original: HTTPResponse) {
        guard let session else { return }
        var response = original
        if response.body.count < BodyCoding.maxLoopDeflateBytes {
            response = BodyCoding.encodeBody(response, acceptEncoding: stream.acceptEncoding,
                                             minimumBytes: context.limits.gzipMinimumBytes)
        }
        let isHead = stream.requestMethod == "HEAD"
        var fields: [(String, String)] = [(":status", String(response.status))]
        fields.reserveCapacity(response.headers.fields.count + 2)
        fields.append(("content-length", String(response.body.count)))
        for field in response.headers.fields where field.name != "content-length" {
            fields.append((field.name, field.value))
        }
        let hasBody = !response.body.isEmpty && !isHead
        stream.responseBody = hasBody ? response.body : []
        let rc = session.submitResponse(streamID: streamID, headers: fields, hasBody: hasBody)
        if rc != 0 {
            context.logger.debug("submit response failed", metadata: ["conn.id": "\(id)", "h2.stream": "\(streamID)"])
        }
        context.recordAccess(stream: stream, status: response.status, bytes: response.body.count, peer: channel.peer)
    }

    // MARK: - Output, shutdown, deadlines

    /// Moves nghttp2's queued frames into the channel while it has room; closes when the session is done.
    func produceOutput() {
        guard let session, channel.state == .active else { return }
        while !channel.isOutputSaturated {
            // Gather every frame nghttp2 has ready into one buffer and hand it to the channel once: with TLS
            // that is one record per 16 KB instead of one per frame.
            outputScratch.removeAll(keepingCapacity: true)
            let rc = session.send(limitBytes: 256 * 1024) { outputScratch.append(contentsOf: $0) }
            if rc < 0 {
                context.logger.debug("nghttp2 send failed", metadata: ["conn.id": "\(id)"])
                channel.close(error: HTTP2Error(.protocolError, "send failed", nghttp2Code: Int32(rc)))
                return
            }
            if outputScratch.isEmpty { break }
            outputScratch.withUnsafeBytes { channel.write($0) }
        }
        run(stateMachine.outputProduced(sessionWantsWrite: session.wantsWrite, sessionWantsRead: session.wantsRead,
                                        isInputClosed: channel.isInputClosed))
    }

    /// Graceful: GOAWAY with the last processed stream; in-flight streams finish, then the connection closes.
    func beginGracefulShutdown() {
        run(stateMachine.shutdownRequested(hasStreams: !streams.isEmpty))
    }

    /// Called by the loop's sweep about once a second: handshake, request and idle deadlines.
    func sweep(now: UInt64) {
        switch stateMachine.sweepStarted(now: now) {
        case .checkStreamDeadlines: break
        case let action: return run(action)
        }
        let timeout = context.limits.requestTimeout.nanoseconds
        for (streamID, stream) in streams where !stream.state.isRequestComplete {
            guard now &- stream.startedAt > timeout else { continue }
            context.counters.timeouts.add(1)
            run(stream.state.deadlinePassed(), streamID, stream)
        }
        run(stateMachine.sweepFinished(now: now, lastActivity: channel.lastActivity, hasStreams: !streams.isEmpty))
        produceOutput()
        channel.flush()
    }

    // MARK: - Actions

    /// Runs what the state machine decided. Actions that concern one stream are run where the event came from.
    private func run(_ action: StateMachine.Action) {
        switch action {
        case .none, .receive, .checkStreamDeadlines, .submitResponse, .dropResponse:
            break
        case .startSession:
            do {
                session = try NGHTTP2Session(role: .server, delegate: self, options: context.sessionOptions)
            } catch {
                context.logger.debug("session creation failed", metadata: ["conn.id": "\(id)", "error": "\(error)"])
                channel.close(error: error)
            }
        case .refuseHTTP1:
            refuseHTTP1()
        case .closeAfterProtocolError:
            context.counters.protocolErrors.add(1)
            produceOutput()  // nghttp2 may have queued a GOAWAY
            channel.closeAfterFlush()
        case .terminate(let reason):
            context.counters.abusiveConnections.add(1)
            context.logger.info("closing abusive connection",
                                metadata: ["conn.id": "\(id)", "peer": "\(channel.peer)", "reason": "\(reason)"])
            session?.terminate(errorCode: NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        case .sendGoAway(let closeWhenFlushed):
            session?.submitGoAway()
            produceOutput()
            channel.flush()
            if closeWhenFlushed { channel.closeAfterFlush() }
        case .closeAfterFlush:
            channel.closeAfterFlush()
        case .closeTimedOut:
            context.counters.timeouts.add(1)
            channel.close(error: HTTP2Error(.timedOut, "handshake/preface timeout"))
        }
    }

    /// Runs what a stream's state machine decided.
    private func run(_ action: ServerStream.StateMachine.Action, _ streamID: Int32, _ stream: ServerStream) {
        switch action {
        case .none, .store, .drop:
            break
        case .route:
            route(streamID, stream)
        case .refuse(let refusal):
            // Answered before (or instead of) routing. The rest of the body is read and dropped (curl reports an
            // RST_STREAM(NO_ERROR) after a complete response as a failure); a client that keeps sending past the
            // request timeout is reset by the sweep.
            run(stateMachine.streamRefused())
            stream.body = []
            submit(streamID, stream, response(for: refusal))
        case .reset:
            session?.submitReset(streamID: streamID, errorCode: NGHTTP2_CANCEL.rawValue)
        }
    }

    /// The error answer of a refused stream.
    private func response(for refusal: ServerStream.StateMachine.Refusal) -> HTTPResponse {
        let limits = context.limits
        switch refusal {
        case .headersTooLarge:
            return .error(431, code: "header_too_large",
                          message: "request headers exceed \(limits.maxHeaderListBytes) bytes")
        case .bodyTooLarge:
            return .error(413, code: "body_too_large",
                          message: "request body exceeds \(limits.maxRequestBodyBytes) bytes")
        case .declaredBodyTooLarge(let declared):
            return .error(413, code: "body_too_large",
                          message: "request body of \(declared) bytes exceeds \(limits.maxRequestBodyBytes)")
        case .timedOut:
            return .error(408, code: "request_timeout",
                          message: "the request did not arrive within \(limits.requestTimeout)")
        }
    }

    /// A client speaking HTTP/1.x to an HTTP/2-only port gets a short 505 and the connection is closed.
    private func refuseHTTP1() {
        context.counters.protocolErrors.add(1)
        let body = "{\"error\":{\"code\":\"http2_required\",\"message\":\"this server speaks HTTP/2 only\"}}"
        let response = "HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-type: application/json\r\n"
            + "content-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n" + body
        var bytes = Array(response.utf8)
        bytes.withUnsafeMutableBytes { channel.write(UnsafeRawBufferPointer($0)) }
        session = nil
        channel.closeAfterFlush()
    }
}
