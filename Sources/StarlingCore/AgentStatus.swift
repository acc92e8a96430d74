/// `POST /v1/agent-status`, what an agent reports about itself: `{"outbox_depth":N,"apply_lag_seconds":X,
/// "last_error":"…"|null,"busy":{"what":"…","seconds":X}|null,"capture":{"mode":…,"reason":…,
/// "retained_wal_bytes":N|null}|null}`. `busy` is the agent's longest-running operation (an apply, a push, a
/// pull) once it has run for a while. The agent encodes it (``json``); the hub decodes it (``init(json:)``),
/// leniently: a report is advice for `/v1/status`, so a member that is absent or malformed reads as unknown.
public struct AgentStatus: Sendable, Hashable {
    /// Changes captured and not yet pushed; nil when unknown.
    public var outboxDepth: Int64?
    /// How far behind the hub's head the region applies, in seconds; nil when unknown.
    public var applyLagSeconds: Double?
    public var lastError: String?
    public var busy: Busy?
    /// How the agent captures (`wal` or `trigger`), why, and the WAL its slot retains.
    public var capture: Capture?

    public struct Capture: Sendable, Hashable {
        public var mode: String
        public var reason: String
        public var retainedWALBytes: Int64?

        public init(mode: String, reason: String, retainedWALBytes: Int64?) {
            self.mode = mode
            self.reason = reason
            self.retainedWALBytes = retainedWALBytes
        }
    }

    /// An operation that has been running for a while.
    public struct Busy: Sendable, Hashable {
        public var what: String
        public var seconds: Double

        public init(what: String, seconds: Double) {
            self.what = what
            self.seconds = seconds
        }
    }

    public init(outboxDepth: Int, applyLagSeconds: Double, lastError: String?, busy: Busy? = nil) {
        self.outboxDepth = Int64(outboxDepth)
        self.applyLagSeconds = applyLagSeconds
        self.lastError = lastError
        self.busy = busy
    }

    /// The wire form; times rounded to milliseconds, a negative or non-finite lag sent as 0.
    public var json: JSONValue {
        let lag = applyLagSeconds.map { $0.isFinite ? max(0, $0) : 0 }
        return .object([
            "outbox_depth": outboxDepth.map(JSONValue.integer) ?? .null,
            "apply_lag_seconds": lag.map { .number(Self.milli($0)) } ?? .null,
            "last_error": lastError.map(JSONValue.string) ?? .null,
            "busy": busy.map { .object(["what": .string($0.what), "seconds": .number(Self.milli($0.seconds))]) } ?? .null,
            "capture": capture.map { capture in
                .object([
                    "mode": .string(capture.mode), "reason": .string(capture.reason),
                    "retained_wal_bytes": capture.retainedWALBytes.map(JSONValue.integer) ?? .null,
                ])
            } ?? .null,
        ])
    }

    /// Decodes a report leniently (see the type's comment). `busy` needs a `what` and finite `seconds` in
    /// [0, 1e9); `capture` needs a `mode`. `apply_lag` is read when `apply_lag_seconds` is absent.
    public init(json: JSONValue) {
        outboxDepth = json["outbox_depth"]?.int64Value
        applyLagSeconds = (json["apply_lag_seconds"] ?? json["apply_lag"])?.numberText.flatMap(Double.init)
        lastError = json["last_error"]?.stringValue
        busy = json["busy"].flatMap { busy -> Busy? in
            guard let what = busy["what"]?.stringValue, let seconds = busy["seconds"]?.numberText.flatMap(Double.init),
                seconds.isFinite, seconds >= 0, seconds < 1e9
            else { return nil }
            return Busy(what: what, seconds: seconds)
        }
        capture = json["capture"].flatMap { capture -> Capture? in
            guard let mode = capture["mode"]?.stringValue else { return nil }
            return Capture(
                mode: mode, reason: capture["reason"]?.stringValue ?? "",
                retainedWALBytes: capture["retained_wal_bytes"]?.int64Value)
        }
    }

    /// `x` rounded to milliseconds, as JSON number text.
    private static func milli(_ x: Double) -> String { String((x * 1000).rounded() / 1000) }
}
