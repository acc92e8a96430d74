import CNGHTTP2

/// What an nghttp2 session reports to its owning connection, on the connection's loop thread.
///
/// Methods return 0 or one of nghttp2's documented callback codes
/// (`NGHTTP2_ERR_CALLBACK_FAILURE`, `NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE`); they never throw.
protocol NGHTTP2SessionDelegate: AnyObject {
    func sessionBeginHeaders(streamID: Int32, category: nghttp2_headers_category) -> Int32
    func sessionHeader(streamID: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) -> Int32
    func sessionFrameReceived(type: UInt8, flags: UInt8, streamID: Int32, errorCode: UInt32) -> Int32
    func sessionDataChunk(streamID: Int32, _ data: UnsafeBufferPointer<UInt8>) -> Int32
    func sessionStreamClosed(streamID: Int32, errorCode: UInt32) -> Int32
    /// Copies the next body bytes of `streamID` into `buffer`; `isEnd` when the body is complete.
    func sessionReadBody(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, isEnd: Bool)
}

/// Owns one `nghttp2_session` (freed in `deinit` with `nghttp2_session_del`). Confined to one loop thread.
///
/// The session's `user_data` is this object, unretained: the session lives exactly as long as this object,
/// and the delegate (the connection that owns this object) outlives both.
final class NGHTTP2Session {
    enum Role { case server, client }

    /// Options applied to the session, mostly abuse limits.
    struct Options {
        var maxConcurrentStreams: UInt32 = 128
        var initialWindowBytes: UInt32 = 1 << 20
        var connectionWindowBytes: Int32 = 16 << 20
        var maxHeaderListBytes: UInt32 = 16 * 1024
        var maxSettingsEntries: Int = 32
        var maxOutboundAcks: Int = 1000
        var streamResetBurst: UInt64 = 1000
        var streamResetRatePerSecond: UInt64 = 100
        var maxContinuations: Int = 8
    }

    private(set) var raw: OpaquePointer
    /// Unowned and unchecked: the delegate owns this session and calls into it synchronously, so it is alive
    /// whenever nghttp2 calls back (a checked `unowned` costs a slow-path retain per callback).
    unowned(unsafe) let delegate: any NGHTTP2SessionDelegate

    init(role: Role, delegate: any NGHTTP2SessionDelegate, options: Options) throws(HTTP2Error) {
        self.delegate = delegate
        var callbacksPointer: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacksPointer) == 0, let callbacks = callbacksPointer else {
            throw HTTP2Error(.protocolError, "nghttp2_session_callbacks_new failed")
        }
        defer { nghttp2_session_callbacks_del(callbacks) }  // the session keeps its own copy.
        NGHTTP2Callbacks.install(into: callbacks)

        var optionPointer: OpaquePointer?
        guard nghttp2_option_new(&optionPointer) == 0, let option = optionPointer else {
            throw HTTP2Error(.protocolError, "nghttp2_option_new failed")
        }
        defer { nghttp2_option_del(option) }  // the session keeps its own copy.
        nghttp2_option_set_max_settings(option, options.maxSettingsEntries)
        nghttp2_option_set_max_outbound_ack(option, options.maxOutboundAcks)
        nghttp2_option_set_max_continuations(option, options.maxContinuations)
        nghttp2_option_set_no_closed_streams(option, 1)
        if role == .server {
            nghttp2_option_set_stream_reset_rate_limit(option, options.streamResetBurst,
                                                       options.streamResetRatePerSecond)
        }

        var sessionPointer: OpaquePointer?
        let rc = role == .server
            ? nghttp2_session_server_new2(&sessionPointer, callbacks, nil, option)
            : nghttp2_session_client_new2(&sessionPointer, callbacks, nil, option)
        guard rc == 0, let session = sessionPointer else {
            throw HTTP2Error(.protocolError, "nghttp2 session creation failed", nghttp2Code: rc)
        }
        raw = session
        // `self` exists only now: hand it to the session as user data before anything can call back.
        nghttp2_session_set_user_data(session, Unmanaged.passUnretained(self).toOpaque())

        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
                                   value: options.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
                                   value: options.initialWindowBytes),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                                   value: options.maxHeaderListBytes),
        ]
        let submitted = nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        guard submitted == 0 else { throw HTTP2Error(.protocolError, "submit settings failed", nghttp2Code: submitted) }
        let windowRC = nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0,
                                                             options.connectionWindowBytes)
        guard windowRC == 0 else { throw HTTP2Error(.protocolError, "set window failed", nghttp2Code: windowRC) }
    }

    deinit {
        nghttp2_session_del(raw)
    }

    /// Feeds received bytes; returns the bytes consumed or a negative nghttp2 error (the connection is then
    /// beyond repair: send what is queued, then close).
    func receive(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return 0 }
        return nghttp2_session_mem_recv(raw, base.assumingMemoryBound(to: UInt8.self), bytes.count)
    }

    /// Hands frames ready to send to `sink` until nothing is left or `limitBytes` were produced.
    /// Returns 0 or a negative nghttp2 error.
    func send(limitBytes: Int, _ sink: (UnsafeRawBufferPointer) -> Void) -> Int {
        var produced = 0
        while produced < limitBytes {
            var pointer: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(raw, &pointer)
            if count < 0 { return count }
            guard count > 0, let pointer else { break }
            sink(UnsafeRawBufferPointer(start: pointer, count: count))
            produced += count
        }
        return 0
    }

    var wantsRead: Bool { nghttp2_session_want_read(raw) != 0 }
    /// False once the peer sent GOAWAY (client): new requests need a new connection.
    var isRequestAllowed: Bool { nghttp2_session_check_request_allowed(raw) != 0 }
    var wantsWrite: Bool { nghttp2_session_want_write(raw) != 0 }

    /// The highest peer stream id processed, for GOAWAY.
    var lastProcessedStreamID: Int32 { nghttp2_session_get_last_proc_stream_id(raw) }

    /// Submits a response (server) with an optional body served through `sessionReadBody`.
    func submitResponse(streamID: Int32, headers: [(String, String)], hasBody: Bool) -> Int32 {
        withNameValues(headers) { nva, count in
            if hasBody {
                var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil),
                                                     read_callback: NGHTTP2Callbacks.readBody)
                return nghttp2_submit_response(raw, streamID, nva, count, &provider)
            }
            return nghttp2_submit_response(raw, streamID, nva, count, nil)
        }
    }

    /// Submits a request (client); returns the new stream id or a negative error.
    func submitRequest(headers: [(String, String)], hasBody: Bool) -> Int32 {
        withNameValues(headers) { nva, count in
            if hasBody {
                var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil),
                                                     read_callback: NGHTTP2Callbacks.readBody)
                return nghttp2_submit_request(raw, nil, nva, count, &provider, nil)
            }
            return nghttp2_submit_request(raw, nil, nva, count, nil, nil)
        }
    }

    func submitReset(streamID: Int32, errorCode: UInt32) {
        _ = nghttp2_submit_rst_stream(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
    }

    /// Graceful GOAWAY: streams up to the last processed one are still served.
    func submitGoAway(errorCode: UInt32 = NGHTTP2_NO_ERROR.rawValue) {
        _ = nghttp2_submit_goaway(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastProcessedStreamID, errorCode, nil, 0)
    }

    /// Immediate GOAWAY with `errorCode`; the session then wants neither read nor write once it is sent.
    func terminate(errorCode: UInt32) {
        _ = nghttp2_session_terminate_session(raw, errorCode)
    }

    /// Resumes a stream whose body read callback returned DEFERRED.
    func resumeData(streamID: Int32) {
        _ = nghttp2_session_resume_data(raw, streamID)
    }

    static func describe(_ code: Int) -> String {
        String(cString: nghttp2_strerror(Int32(truncatingIfNeeded: code)))
    }

    /// Name/value bytes of the headers being submitted; capacity kept between calls.
    private var headerStorage: [UInt8] = []
    private var headerOffsets: [(name: Int, nameLength: Int, value: Int, valueLength: Int)] = []
    private var nameValues: [nghttp2_nv] = []

    /// Builds nghttp2 name/value pairs over one contiguous buffer that lives for the call (nghttp2 copies them).
    private func withNameValues(_ headers: [(String, String)],
                                _ body: (UnsafeMutablePointer<nghttp2_nv>, Int) -> Int32) -> Int32 {
        headerStorage.removeAll(keepingCapacity: true)
        headerOffsets.removeAll(keepingCapacity: true)
        for (name, value) in headers {
            let nameStart = headerStorage.count
            headerStorage.append(contentsOf: name.utf8)
            let valueStart = headerStorage.count
            headerStorage.append(contentsOf: value.utf8)
            headerOffsets.append((nameStart, valueStart - nameStart, valueStart, headerStorage.count - valueStart))
        }
        headerStorage.append(0)  // never empty, so the base address exists
        return headerStorage.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress.unsafelyUnwrapped  // non-empty array
            nameValues.removeAll(keepingCapacity: true)
            for entry in headerOffsets {
                nameValues.append(nghttp2_nv(name: base + entry.name, value: base + entry.value,
                                             namelen: entry.nameLength, valuelen: entry.valueLength,
                                             flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
            }
            nameValues.append(nghttp2_nv())  // never empty either
            return nameValues.withUnsafeMutableBufferPointer { nvBuffer in
                body(nvBuffer.baseAddress.unsafelyUnwrapped, nvBuffer.count - 1)
            }
        }
    }
}

/// The `@convention(c)` thunks: each finds the session object from `user_data` and hands over at once.
enum NGHTTP2Callbacks {
    static func install(into callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, beginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, header)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, frameReceived)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, dataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, streamClosed)
    }

    @inline(__always)
    private static func delegate(_ userData: UnsafeMutableRawPointer?) -> (any NGHTTP2SessionDelegate)? {
        guard let userData else { return nil }
        return Unmanaged<NGHTTP2Session>.fromOpaque(userData).takeUnretainedValue().delegate
    }

    static let beginHeaders: nghttp2_on_begin_headers_callback = { _, frame, userData in
        guard let frame, let delegate = delegate(userData) else { return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue }
        guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
        return delegate.sessionBeginHeaders(streamID: frame.pointee.hd.stream_id, category: frame.pointee.headers.cat)
    }

    static let header: nghttp2_on_header_callback = { _, frame, name, nameLength, value, valueLength, _, userData in
        guard let frame, let delegate = delegate(userData) else { return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue }
        return delegate.sessionHeader(streamID: frame.pointee.hd.stream_id,
                                      name: UnsafeBufferPointer(start: name, count: nameLength),
                                      value: UnsafeBufferPointer(start: value, count: valueLength))
    }

    static let frameReceived: nghttp2_on_frame_recv_callback = { _, frame, userData in
        guard let frame, let delegate = delegate(userData) else { return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue }
        let hd = frame.pointee.hd
        let errorCode = hd.type == UInt8(NGHTTP2_RST_STREAM.rawValue) ? frame.pointee.rst_stream.error_code : 0
        return delegate.sessionFrameReceived(type: hd.type, flags: hd.flags, streamID: hd.stream_id,
                                             errorCode: errorCode)
    }

    static let dataChunk: nghttp2_on_data_chunk_recv_callback = { _, _, streamID, data, length, userData in
        guard let delegate = delegate(userData) else { return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue }
        return delegate.sessionDataChunk(streamID: streamID, UnsafeBufferPointer(start: data, count: length))
    }

    static let streamClosed: nghttp2_on_stream_close_callback = { _, streamID, errorCode, userData in
        guard let delegate = delegate(userData) else { return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue }
        return delegate.sessionStreamClosed(streamID: streamID, errorCode: errorCode)
    }

    static let readBody: nghttp2_data_source_read_callback = { _, streamID, buffer, length, flags, _, userData in
        guard let delegate = delegate(userData), let buffer, let flags else {
            return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
        }
        let (count, isEnd) = delegate.sessionReadBody(streamID: streamID,
                                                      into: UnsafeMutableRawBufferPointer(start: buffer, count: length))
        if count < 0 { return Int(NGHTTP2_ERR_DEFERRED.rawValue) }
        if isEnd { flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
        return count
    }
}
