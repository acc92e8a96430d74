extension HTTP2ServerConnection {
    /// The life of one server connection, as values: what happened goes in, what to do comes out. Pure: no
    /// session, socket, clock or counter; time is passed in. ``HTTP2ServerConnection`` owns one, feeds it the
    /// channel's and nghttp2's events and runs the actions; the tests feed it events line by line.
    ///
    /// ```
    ///             channelActivated                   first bytes, not HTTP/1
    ///  accepted ──────────────────▶ awaitingPreface ─────────────────────────▶ open
    ///     │        .startSession      │    │              .receive               │
    ///     │                           │    │ GOAWAY: shutdown, abuse             │ GOAWAY: shutdown, idle,
    ///     │                           │    └──────────────────────▶ goingAway ◀──┘ abuse, bad input
    ///     │                           │ first bytes: HTTP/1              │
    ///     │                           │ .refuseHTTP1                     │ channelClosed
    ///     │                           ▼                                  ▼
    ///     └── handshake deadline ──▶ closed ◀──────────── (channelClosed from any state)
    ///         .closeTimedOut (from awaitingPreface too)
    /// ```
    ///
    /// Besides the state it keeps what the abuse limits need (resets and SETTINGS/PING frames in the current
    /// one-second window, refused streams) and the count of handlers running, which keeps the connection open:
    /// the connection closes after its output is flushed only when nghttp2 has nothing to do and no handler is
    /// still to answer. Streams live in the connection (they hold buffers); this decides for the connection.
    struct StateMachine {
        /// Where the connection is.
        enum State: Equatable {
            /// Accepted; the nghttp2 session starts when the channel is active (after TLS, or at once for h2c).
            case accepted
            /// The session is up; no byte from the client yet, so it may still be an HTTP/1 client.
            case awaitingPreface
            /// Serving streams.
            case open
            /// A GOAWAY is queued (graceful shutdown, idle, abuse or bad input): in-flight streams finish, no
            /// further GOAWAY is sent, then the connection closes.
            case goingAway
            /// The channel is closed (or closing after refusing HTTP/1): events are ignored.
            case closed
        }

        /// Why a connection is closed with GOAWAY(ENHANCE_YOUR_CALM).
        enum AbuseReason: String, Equatable, CustomStringConvertible {
            case rapidReset = "rapid reset"
            case controlFrameFlood = "SETTINGS/PING flood"
            case refusedStreams = "too many refused streams"

            var description: String { rawValue }
        }

        /// What the connection does next. Imperative: the connection runs it and feeds back what followed.
        enum Action: Equatable {
            /// Nothing.
            case none
            /// Create the nghttp2 server session (close the channel if that fails).
            case startSession
            /// Hand the bytes to nghttp2.
            case receive
            /// Answer an HTTP/1 client with a short 505 and close after the flush.
            case refuseHTTP1
            /// nghttp2 refused the input: count it, write what nghttp2 queued (its GOAWAY), close after the flush.
            case closeAfterProtocolError
            /// GOAWAY(ENHANCE_YOUR_CALM) for this connection only; the others are not affected.
            case terminate(AbuseReason)
            /// GOAWAY(NO_ERROR) naming the last processed stream; when `closeWhenFlushed`, nothing is in flight
            /// and the connection closes once the GOAWAY is written.
            case sendGoAway(closeWhenFlushed: Bool)
            /// Nothing is left to do: close once the queued output is written.
            case closeAfterFlush
            /// The client did not finish the TLS handshake and the preface in time: close now.
            case closeTimedOut
            /// Check each stream's request deadline (408 or reset), then report
            /// ``sweepFinished(now:lastActivity:hasStreams:)``.
            case checkStreamDeadlines
            /// A handler answered and its stream is still open: submit the response.
            case submitResponse
            /// A handler answered but its stream or the connection is gone: drop the response.
            case dropResponse
        }

        private(set) var state: State = .accepted
        /// Handlers running for this connection (their answers come back through the loop).
        private(set) var runningHandlers = 0
        private let limits: HTTP2Limits
        private let acceptedAt: UInt64
        private var rateWindowStart: UInt64
        private var resetsInWindow = 0
        private var controlFramesInWindow = 0
        private var refusedStreams = 0

        /// `acceptedAt`: monotonic nanoseconds when the socket was accepted (the handshake deadline counts
        /// from it).
        init(limits: HTTP2Limits, acceptedAt: UInt64) {
            self.limits = limits
            self.acceptedAt = acceptedAt
            self.rateWindowStart = acceptedAt
        }

        // MARK: - Channel

        /// The channel is active (TLS handshake done, or an h2c socket registered).
        mutating func channelActivated() -> Action {
            guard state == .accepted else { return .none }
            state = .awaitingPreface
            return .startSession
        }

        /// Bytes arrived from the client. The first ones decide whether it speaks HTTP/2 at all.
        mutating func bytesReceived(_ bytes: UnsafeRawBufferPointer) -> Action {
            switch state {
            case .accepted, .closed:
                return .none
            case .awaitingPreface:
                if Self.looksLikeHTTP1(bytes) {
                    state = .closed
                    return .refuseHTTP1
                }
                state = .open
                return .receive
            case .open, .goingAway:
                return .receive
            }
        }

        /// nghttp2 refused the input (a connection error; it may have queued a GOAWAY of its own).
        mutating func receiveFailed() -> Action {
            guard state != .closed && state != .accepted else { return .none }
            state = .goingAway
            return .closeAfterProtocolError
        }

        /// The channel closed, for whatever reason.
        mutating func channelClosed() {
            state = .closed
        }

        // MARK: - Abuse limits

        /// The client reset a stream (RST_STREAM): rapid reset past the limit ends the connection.
        mutating func resetReceived(now: UInt64) -> Action {
            advanceWindow(now: now)
            resetsInWindow += 1
            return resetsInWindow > limits.maxClientResetsPerSecond ? terminate(.rapidReset) : .none
        }

        /// The client sent a SETTINGS or PING frame that is not an acknowledgement.
        mutating func controlFrameReceived(now: UInt64) -> Action {
            advanceWindow(now: now)
            controlFramesInWindow += 1
            return controlFramesInWindow > limits.maxControlFramesPerSecond ? terminate(.controlFrameFlood) : .none
        }

        /// A stream was refused (oversized headers, a body past the limit, a request that timed out).
        mutating func streamRefused() -> Action {
            refusedStreams += 1
            return refusedStreams > limits.maxRefusedStreams ? terminate(.refusedStreams) : .none
        }

        // MARK: - Handlers

        /// A handler was started as a task for one of this connection's streams.
        mutating func handlerStarted() {
            runningHandlers += 1
        }

        /// A handler answered; `isStreamOpen`: its stream still exists on the session.
        mutating func handlerFinished(isStreamOpen: Bool) -> Action {
            precondition(runningHandlers > 0, "a handler finished that never started")
            runningHandlers -= 1
            guard isStreamOpen, state != .closed else { return .dropResponse }
            return .submitResponse
        }

        // MARK: - Output, shutdown, deadlines

        /// nghttp2's output was moved to the channel (or the channel is saturated). `sessionWantsWrite`,
        /// `sessionWantsRead`: nghttp2's view; `isInputClosed`: the client half-closed.
        func outputProduced(sessionWantsWrite: Bool, sessionWantsRead: Bool, isInputClosed: Bool) -> Action {
            guard state != .closed, runningHandlers == 0, !sessionWantsWrite else { return .none }
            // Done: the session has nothing more to do, or the client half-closed and every answer is queued.
            return !sessionWantsRead || isInputClosed ? .closeAfterFlush : .none
        }

        /// The server is shutting down gracefully. `hasStreams`: some stream is still open.
        mutating func shutdownRequested(hasStreams: Bool) -> Action {
            switch state {
            case .awaitingPreface, .open:
                state = .goingAway
                return .sendGoAway(closeWhenFlushed: !hasStreams && runningHandlers == 0)
            case .accepted, .goingAway, .closed:
                return .none
            }
        }

        /// The loop's sweep (about once a second) reached this connection.
        func sweepStarted(now: UInt64) -> Action {
            switch state {
            case .accepted, .awaitingPreface:
                return now &- acceptedAt > limits.handshakeTimeout.nanoseconds ? .closeTimedOut : .none
            case .open, .goingAway:
                return .checkStreamDeadlines
            case .closed:
                return .none
            }
        }

        /// The sweep checked the streams. `lastActivity`: when the channel last read or wrote; an idle connection
        /// past the idle timeout is sent away.
        mutating func sweepFinished(now: UInt64, lastActivity: UInt64, hasStreams: Bool) -> Action {
            guard !hasStreams, runningHandlers == 0, now &- lastActivity > limits.idleTimeout.nanoseconds else {
                return .none
            }
            return shutdownRequested(hasStreams: false)
        }

        // MARK: - Helpers

        /// GOAWAY(ENHANCE_YOUR_CALM), once: a connection already going away is left to finish.
        private mutating func terminate(_ reason: AbuseReason) -> Action {
            guard state == .open || state == .awaitingPreface else { return .none }
            state = .goingAway
            return .terminate(reason)
        }

        /// Starts a new one-second window for the rate limits when the current one is over.
        private mutating func advanceWindow(now: UInt64) {
            guard now &- rateWindowStart > 1_000_000_000 else { return }
            rateWindowStart = now
            resetsInWindow = 0
            controlFramesInWindow = 0
        }

        /// True for an HTTP/1 request line: an upper-case token of 3 to 8 letters and a space (GET, POST, ...).
        /// The HTTP/2 preface starts with "PRI "; fewer than 4 bytes are taken for HTTP/2 (nghttp2 decides).
        static func looksLikeHTTP1(_ bytes: UnsafeRawBufferPointer) -> Bool {
            guard bytes.count >= 4 else { return false }
            if bytes[0] == UInt8(ascii: "P") && bytes[1] == UInt8(ascii: "R") && bytes[2] == UInt8(ascii: "I") {
                return false
            }
            var index = 0
            while index < bytes.count && index < 8 && bytes[index] >= UInt8(ascii: "A")
                && bytes[index] <= UInt8(ascii: "Z")
            {
                index += 1
            }
            return index >= 3 && index < bytes.count && bytes[index] == UInt8(ascii: " ")
        }
    }
}
