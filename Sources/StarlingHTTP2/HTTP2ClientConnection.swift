import CNGHTTP2
import StarlingIO

/// One client connection: an nghttp2 client session over a socket channel, confined to the client's loop.
/// Completed, failed and reset streams are reported to the owning `ClientLoopState`. What happens next is
/// decided by its ``StateMachine`` (HTTP2ClientConnection+StateMachine.swift); this class runs the actions.
final class HTTP2ClientConnection: SocketChannelDelegate, NGHTTP2SessionDelegate {
    let channel: SocketChannel
    /// Strong: a closing connection must still reach its owner even if the client was dropped meanwhile. The
    /// cycle (owner → current connection → owner) ends when the connection closes.
    private let owner: ClientLoopState
    private var session: NGHTTP2Session?
    private var streams: [Int32: ClientStream] = [:]
    private var machine = StateMachine()
    /// Frames gathered from nghttp2 before one write to the channel.
    private var outputScratch: [UInt8] = []

    init(channel: SocketChannel, owner: ClientLoopState) {
        self.channel = channel
        self.owner = owner
    }

    /// The session is up and the channel not closed (a connection draining after GOAWAY is still active).
    var isActive: Bool { machine.isActive }

    /// New requests may be sent on this connection.
    var canTakeRequests: Bool {
        guard machine.isActive, let session, channel.state == .active else { return false }
        return session.isRequestAllowed
    }

    // MARK: - Channel events

    func channelActive(_ channel: SocketChannel) {
        guard machine.channelActivated() == .startSession else { return }
        do {
            var options = NGHTTP2Session.Options()
            options.maxConcurrentStreams = 100
            session = try NGHTTP2Session(role: .client, delegate: self, options: options)
        } catch {
            if machine.sessionFailed() == .close { channel.close(error: error) }
            return
        }
        if machine.sessionStarted() == .announce {
            produceOutput()  // the preface and SETTINGS go out at once, whatever requests come later
            owner.connectionActive(self)
        }
    }

    func channelRead(_ channel: SocketChannel, _ bytes: UnsafeRawBufferPointer) {
        guard machine.bytesReceived() == .receive, let session else { return }
        let consumed = session.receive(bytes)
        if consumed < 0, machine.receiveFailed() == .closeAfterProtocolError {
            produceOutput()
            channel.close(error: HTTP2Error(.protocolError, "bad HTTP/2 input from server: \(NGHTTP2Session.describe(consumed))",
                                            nghttp2Code: Int32(consumed)))
        }
    }

    func channelReadyForOutput(_ channel: SocketChannel) {
        produceOutput()
    }

    /// The server closed its side: nothing more will arrive for open streams.
    func channelInputClosed(_ channel: SocketChannel) {
        if machine.inputClosed() == .close { channel.close(error: nil) }
    }

    func channelClosed(_ channel: SocketChannel, error: HTTP2Error?) {
        guard machine.channelClosed() == .failStreams else { return }
        let failure = error ?? HTTP2Error(.connectionClosed, "the server closed the connection")
        let failed = streams
        streams.removeAll()
        session = nil
        for (_, stream) in failed { owner.finish(stream.requestID, .failure(failure), retryable: false) }
        owner.connectionClosed(self, error: failure)
    }

    // MARK: - Requests

    /// Submits a request; returns false when the session refuses it (the caller reconnects).
    /// Submits a request whose body is already encoded (gzip happens in the caller's task, not on the loop).
    func submit(requestID: UInt64, _ request: HTTPClientRequest, authority: String, scheme: String,
                maxResponseBytes: Int, acceptsGzip: Bool = true) -> Int32? {
        guard let session else { return nil }
        let body = request.body
        var fields: [(String, String)] = [(":method", request.method), (":scheme", scheme),
                                          (":authority", authority), (":path", request.path)]
        if acceptsGzip { fields.append(("accept-encoding", "gzip")) }
        if !body.isEmpty || request.method == "POST" || request.method == "PUT" {
            fields.append(("content-length", String(body.count)))
        }
        for field in request.headers.fields where field.name != "content-length" && field.name != "accept-encoding" {
            // content-encoding, when present, was set by HTTP2Client.send together with the encoded body.
            fields.append((field.name, field.value))
        }
        let streamID = session.submitRequest(headers: fields, hasBody: !body.isEmpty)
        guard streamID > 0 else { return nil }
        streams[streamID] = ClientStream(requestID: requestID, body: body, maxResponseBytes: maxResponseBytes)
        return streamID
    }

    /// Cancels a stream whose request timed out.
    func cancel(streamID: Int32) {
        guard let session, streams.removeValue(forKey: streamID) != nil else { return }
        session.submitReset(streamID: streamID, errorCode: NGHTTP2_CANCEL.rawValue)
        produceOutput()
        channel.flush()
    }

    func produceOutput() {
        guard let session, channel.state == .active else { return }
        while !channel.isOutputSaturated {
            outputScratch.removeAll(keepingCapacity: true)  // one channel write (one TLS record run) per batch
            if session.send(limitBytes: 256 * 1024, { outputScratch.append(contentsOf: $0) }) < 0 {
                channel.close(error: HTTP2Error(.protocolError, "nghttp2 send failed"))
                return
            }
            if outputScratch.isEmpty { break }
            outputScratch.withUnsafeBytes { channel.write($0) }
        }
        let next = machine.outputProduced(
            sessionWantsRead: session.wantsRead, sessionWantsWrite: session.wantsWrite, hasStreams: !streams.isEmpty)
        if next == .closeAfterFlush { channel.closeAfterFlush() }
    }

    // MARK: - Session events

    func sessionBeginHeaders(streamID: Int32, category: nghttp2_headers_category) -> Int32 { 0 }

    func sessionHeader(streamID: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) -> Int32 {
        guard let stream = streams[streamID] else { return 0 }
        let nameText = String(decoding: name, as: UTF8.self)
        let valueText = String(decoding: value, as: UTF8.self)
        if nameText == ":status" {
            stream.status = Int(valueText)
        } else if !nameText.hasPrefix(":") {
            stream.headers.append(lowercasedName: nameText, value: valueText)
        }
        return 0
    }

    func sessionFrameReceived(type: UInt8, flags: UInt8, streamID: Int32, errorCode: UInt32) -> Int32 { 0 }

    func sessionDataChunk(streamID: Int32, _ data: UnsafeBufferPointer<UInt8>) -> Int32 {
        guard let stream = streams[streamID] else { return 0 }
        switch StateMachine.dataReceived(
            bodyBytes: stream.body.count, chunkBytes: data.count, maxResponseBytes: stream.maxResponseBytes)
        {
        case .resetTooLarge:
            stream.tooLarge = true
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue  // resets the stream
        case .append:
            stream.body.append(contentsOf: data)
            return 0
        }
    }

    func sessionStreamClosed(streamID: Int32, errorCode: UInt32) -> Int32 {
        guard let stream = streams.removeValue(forKey: streamID) else { return 0 }
        switch StateMachine.streamClosed(isTooLarge: stream.tooLarge, errorCode: errorCode, hasStatus: stream.status != nil) {
        case .bodyTooLarge:
            owner.finish(stream.requestID, .failure(HTTP2Error(.bodyTooLarge,
                "response body exceeds \(stream.maxResponseBytes) bytes")), retryable: false)
        case .refused:
            // The server did not process it (GOAWAY or stream limit): safe to send again elsewhere.
            owner.finish(stream.requestID, .failure(HTTP2Error(.streamReset, "stream refused by the server",
                                                               nghttp2Code: Int32(errorCode))), retryable: true)
        case .reset:
            owner.finish(stream.requestID, .failure(HTTP2Error(.streamReset, "stream reset by the server",
                                                               nghttp2Code: Int32(errorCode))), retryable: false)
        case .complete:
            owner.finish(stream.requestID, completeResponse(stream), retryable: false)
        }
        return 0
    }

    func sessionReadBody(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, isEnd: Bool) {
        guard let stream = streams[streamID] else { return (0, true) }
        let count = min(stream.requestBody.count - stream.requestOffset, buffer.count)
        if count > 0 {
            stream.requestBody.withUnsafeBytes { source in
                buffer.copyMemory(from: UnsafeRawBufferPointer(
                    rebasing: source[stream.requestOffset..<stream.requestOffset + count]))
            }
            stream.requestOffset += count
        }
        let isEnd = stream.requestOffset == stream.requestBody.count
        if isEnd { stream.requestBody = [] }
        return (count, isEnd)
    }

    /// The response as received; gzip is undone by `HTTP2Client.send` in the caller's task.
    private func completeResponse(_ stream: ClientStream) -> Result<HTTPResponse, HTTP2Error> {
        .success(HTTPResponse(status: stream.status ?? 0, headers: stream.headers, body: stream.body))
    }
}

/// One request stream on a client connection.
final class ClientStream {
    let requestID: UInt64
    let maxResponseBytes: Int
    var requestBody: [UInt8]
    var requestOffset = 0
    var body: [UInt8] = []
    var status: Int?
    var headers = HTTPHeaders()
    var tooLarge = false

    init(requestID: UInt64, body: [UInt8], maxResponseBytes: Int) {
        self.requestID = requestID
        self.requestBody = body
        self.maxResponseBytes = maxResponseBytes
    }
}
