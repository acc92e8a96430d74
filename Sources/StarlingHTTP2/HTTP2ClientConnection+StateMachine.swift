extension HTTP2ClientConnection {
    /// The life of one client connection, as values: what happened goes in, what to do comes out. Pure: no
    /// session, socket or owner. ``HTTP2ClientConnection`` owns one, feeds it the channel's and nghttp2's
    /// events and runs the actions; the tests feed it events line by line.
    ///
    /// ```
    ///              channelActivated            sessionStarted
    ///  connecting ──────────────────▶ starting ───────────────▶ active ──┐ bytesReceived: .receive
    ///      │         .startSession       │      .announce          │ ◀───┘ receiveFailed: .closeAfterProtocolError
    ///      │                             │ sessionFailed           │ inputClosed: .close
    ///      │                             │ .close                  │ outputProduced, nothing left: .closeAfterFlush
    ///      ▼                             ▼                         ▼
    ///      └────────────────────────▶ closed ◀─────────────────────┘ (channelClosed from any state:
    ///                                                                  .failStreams, then the owner is told)
    /// ```
    ///
    /// Streams live in the connection (they hold buffers); each stream's end is decided here, by
    /// ``streamClosed(isTooLarge:errorCode:hasStatus:)``, and a response body's growth by
    /// ``dataReceived(bodyBytes:chunkBytes:maxResponseBytes:)``.
    struct StateMachine {
        /// Where the connection is.
        enum State: Equatable {
            /// The socket is connecting (or its TLS handshake runs).
            case connecting
            /// The channel is active and the nghttp2 client session is being created.
            case starting
            /// The session is up: requests may be submitted while nghttp2 allows new streams.
            case active
            /// The channel is closed (or closing): events are ignored, no request is taken.
            case closed
        }

        /// What the connection does next. Imperative: the connection runs it.
        enum Action: Equatable {
            /// Nothing.
            case none
            /// Create the nghttp2 client session; report ``sessionStarted()`` or ``sessionFailed()``.
            case startSession
            /// Write the preface and SETTINGS at once (whatever requests come later) and tell the owner the
            /// connection takes requests.
            case announce
            /// Hand the bytes to nghttp2.
            case receive
            /// nghttp2 refused the server's input: write what it queued (its GOAWAY), then close with the error.
            case closeAfterProtocolError
            /// Close now (the server closed its side, or the session could not start).
            case close
            /// Nothing is left to do: close once the queued output is written.
            case closeAfterFlush
            /// The channel closed: fail every open stream (not retryable) and tell the owner.
            case failStreams
        }

        /// How a closed stream ends for the request that opened it.
        enum StreamOutcome: Equatable {
            /// The response arrived whole: hand it over.
            case complete
            /// The response body grew past the limit (the stream was reset for it).
            case bodyTooLarge
            /// The server refused the stream unprocessed (GOAWAY or its stream limit): safe to send elsewhere.
            case refused
            /// The server reset the stream, or it ended without a `:status`: not retried (it may have run).
            case reset
        }

        /// What to do with a chunk of response body.
        enum DataAction: Equatable {
            case append
            /// Past `maxResponseBytes`: mark the stream too large and reset it.
            case resetTooLarge
        }

        private(set) var state: State = .connecting

        /// New requests may be sent (nghttp2 may still refuse a stream after a GOAWAY).
        var isActive: Bool { state == .active }

        // MARK: - Channel

        /// The channel is active (TLS handshake done, or a plain socket connected).
        mutating func channelActivated() -> Action {
            guard state == .connecting else { return .none }
            state = .starting
            return .startSession
        }

        /// The nghttp2 session exists.
        mutating func sessionStarted() -> Action {
            guard state == .starting else { return .none }
            state = .active
            return .announce
        }

        /// Creating the nghttp2 session failed.
        mutating func sessionFailed() -> Action {
            guard state == .starting else { return .none }
            state = .closed
            return .close
        }

        /// Bytes arrived from the server.
        func bytesReceived() -> Action {
            state == .active ? .receive : .none
        }

        /// nghttp2 refused the input (a connection error).
        mutating func receiveFailed() -> Action {
            guard state == .active else { return .none }
            state = .closed
            return .closeAfterProtocolError
        }

        /// The server closed its side: nothing more will arrive for open streams.
        mutating func inputClosed() -> Action {
            guard state != .closed else { return .none }
            state = .closed
            return .close
        }

        /// nghttp2's output was moved to the channel. `sessionWantsRead`/`sessionWantsWrite`: nghttp2's view;
        /// `hasStreams`: a request is still open on this connection.
        func outputProduced(sessionWantsRead: Bool, sessionWantsWrite: Bool, hasStreams: Bool) -> Action {
            guard state == .active, !sessionWantsRead, !sessionWantsWrite, !hasStreams else { return .none }
            return .closeAfterFlush
        }

        /// The channel closed, for whatever reason (always reported, once).
        mutating func channelClosed() -> Action {
            state = .closed
            return .failStreams
        }

        // MARK: - Streams

        /// A chunk of `chunkBytes` arrived for a stream whose body holds `bodyBytes`.
        static func dataReceived(bodyBytes: Int, chunkBytes: Int, maxResponseBytes: Int) -> DataAction {
            bodyBytes + chunkBytes > maxResponseBytes ? .resetTooLarge : .append
        }

        /// How a stream that closed with HTTP/2 error code `errorCode` ends: `isTooLarge` when its body was cut
        /// off, `hasStatus` when the response's `:status` arrived.
        static func streamClosed(isTooLarge: Bool, errorCode: UInt32, hasStatus: Bool) -> StreamOutcome {
            if isTooLarge { return .bodyTooLarge }
            if errorCode == Self.refusedStream { return .refused }
            if errorCode != Self.noError || !hasStatus { return .reset }
            return .complete
        }

        /// HTTP/2 error codes (RFC 9113 section 7): NO_ERROR and REFUSED_STREAM.
        static let noError: UInt32 = 0x0
        static let refusedStream: UInt32 = 0x7
    }
}
