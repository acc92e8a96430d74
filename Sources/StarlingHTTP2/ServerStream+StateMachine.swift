extension ServerStream {
    /// The life of one request stream on a server connection, as values: what nghttp2 reported goes in, what to
    /// do comes out. Pure (sizes and limits are passed in); the connection runs the actions.
    ///
    /// ```
    ///  receiving ─┬─ end of request (.route) ─┬─ answered on the loop ──────────────────────────▶ answered
    ///             │                           └─ handlerStarted ─▶ handling ─ handlerFinished ─▶ answered
    ///             ├─ body, declared length or deadline past its limit (.refuse) ─▶ answeredEarly
    ///             └─ header list past its limit ─▶ headersTooLarge ─┬─ headers end, deadline (.refuse) ▶ answeredEarly
    ///                                                              └─ end of request (.refuse) ─▶ answered
    ///  answeredEarly ─┬─ end of request ─▶ answered
    ///                 └─ deadline again (.reset) ─▶ answered
    /// ```
    ///
    /// An early answer (413, 408, 431 before the request ended) keeps reading the rest of the body and drops it:
    /// curl reports an RST_STREAM(NO_ERROR) after a complete response as a failure. A client that keeps sending
    /// past the request deadline after that is reset. Every refusal counts toward the connection's refused
    /// streams (``HTTP2ServerConnection/StateMachine/streamRefused()``).
    struct StateMachine {
        /// Where the stream is.
        enum Phase: Equatable {
            /// Headers and body arriving.
            case receiving
            /// The header list passed `maxHeaderListBytes`: the rest of it is dropped; a 431 answers.
            case headersTooLarge
            /// The request is complete and a handler task owns the stream until it answers.
            case handling
            /// Answered before the request ended; what still arrives is dropped.
            case answeredEarly
            /// Answered, the request complete.
            case answered
        }

        /// Why a stream is answered with an error before (or instead of) routing.
        enum Refusal: Equatable {
            /// 431: the header list passed the limit.
            case headersTooLarge
            /// 413: the body passed the limit while arriving.
            case bodyTooLarge
            /// 413: the declared `content-length` is past the limit.
            case declaredBodyTooLarge(Int)
            /// 408: the request did not arrive within the request timeout.
            case timedOut
        }

        /// What the connection does next with the stream.
        enum Action: Equatable {
            /// Nothing.
            case none
            /// Keep the header field or body bytes.
            case store
            /// Drop them.
            case drop
            /// The request is complete: route it (then ``routedAnswered()`` or ``handlerStarted()``).
            case route
            /// Answer with the refusal now and count a refused stream.
            case refuse(Refusal)
            /// RST_STREAM(CANCEL): answered early, and the client still sends past the deadline.
            case reset
        }

        private(set) var phase: Phase = .receiving
        /// Header list size as HTTP/2 counts it (name + value + 32 per field).
        private(set) var headerBytes = 0

        /// The request has ended (or no longer matters): the sweep leaves the stream alone.
        var isRequestComplete: Bool { phase == .handling || phase == .answered }

        /// A header field of `fieldBytes` (name + value) arrived.
        mutating func headerReceived(fieldBytes: Int, maxHeaderListBytes: Int) -> Action {
            headerBytes += fieldBytes + 32
            if phase == .receiving && headerBytes > maxHeaderListBytes { phase = .headersTooLarge }
            return phase == .receiving ? .store : .drop
        }

        /// The HEADERS frame ended without ending the request: a body follows, `declaredLength` long if the
        /// client said so.
        mutating func headersEnded(declaredLength: Int?, maxBodyBytes: Int) -> Action {
            switch phase {
            case .headersTooLarge:
                phase = .answeredEarly
                return .refuse(.headersTooLarge)
            case .receiving:
                guard let declaredLength, declaredLength > maxBodyBytes else { return .none }
                phase = .answeredEarly
                return .refuse(.declaredBodyTooLarge(declaredLength))
            case .handling, .answeredEarly, .answered:
                return .none
            }
        }

        /// Body bytes arrived: `count` more after `bodyBytes` kept so far.
        mutating func dataReceived(count: Int, bodyBytes: Int, maxBodyBytes: Int) -> Action {
            guard phase == .receiving else { return .drop }
            guard bodyBytes + count > maxBodyBytes else { return .store }
            phase = .answeredEarly
            return .refuse(.bodyTooLarge)
        }

        /// The client ended the request (END_STREAM on HEADERS or DATA).
        mutating func requestEnded() -> Action {
            switch phase {
            case .receiving:
                return .route
            case .headersTooLarge:
                phase = .answered
                return .refuse(.headersTooLarge)
            case .answeredEarly:
                phase = .answered
                return .none
            case .handling, .answered:
                return .none
            }
        }

        /// The routed request was answered on the loop (an inline handler, 400, 404, 405, 415).
        mutating func routedAnswered() {
            precondition(phase == .receiving, "a stream answered twice")
            phase = .answered
        }

        /// A handler task owns the routed request now.
        mutating func handlerStarted() {
            precondition(phase == .receiving, "a handler started for a stream not being routed")
            phase = .handling
        }

        /// The handler answered; its response is submitted now.
        mutating func handlerFinished() {
            precondition(phase == .handling, "a handler finished for a stream it did not own")
            phase = .answered
        }

        /// The sweep found the request past its deadline (only asked while ``isRequestComplete`` is false).
        mutating func deadlinePassed() -> Action {
            switch phase {
            case .receiving, .headersTooLarge:
                phase = .answeredEarly
                return .refuse(.timedOut)
            case .answeredEarly:
                phase = .answered
                return .reset
            case .handling, .answered:
                return .none
            }
        }
    }
}
