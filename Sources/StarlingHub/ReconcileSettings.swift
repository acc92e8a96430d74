import StarlingCore

extension HubConfiguration {
    /// `reconcile:` in hub.yaml:
    /// ```yaml
    /// reconcile: {interval: 24h, timeout: 1h, max_key_rows: 20000}
    /// ```
    /// * `interval` — how often a scheduled run starts (`s`, `m`, `h`, `d` suffix; `0` turns the schedule off;
    ///   `POST /v1/reconcile` works either way). Default `24h`, at least `1m`.
    /// * `timeout` — a run still waiting for a region after this long is finished with that region's tables
    ///   marked `timed_out` (an agent that is down never answers). Default `1h`, at least `10s`.
    /// * `max_key_rows` — differing buckets are split further until their rows are at most this many, then
    ///   compared key by key in chunks of this size. Default 20000, 100…1000000.
    public struct Reconcile: Sendable, Hashable, Decodable {
        public var interval: String = "24h"
        public var timeout: String = "1h"
        public var maxKeyRows: Int = 20_000

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: ConfigurationKey.self)
            try c.rejectUnknownKeys(["interval", "timeout", "max_key_rows"])
            let d = Reconcile()
            interval = try c.value("interval", default: d.interval)
            timeout = try c.value("timeout", default: d.timeout)
            maxKeyRows = try c.value("max_key_rows", default: d.maxKeyRows)
        }

        /// The run-time form; errors name the key.
        func validated() throws(HubError) -> ReconcileSettings {
            guard let every = Self.seconds(interval), every == 0 || every >= 60 else {
                throw HubError(
                    code: .invalidConfiguration, message: "must be 0 or a duration of at least 1m, like 24h",
                    key: "reconcile.interval")
            }
            guard let limit = Self.seconds(timeout), limit >= 10 else {
                throw HubError(
                    code: .invalidConfiguration, message: "must be a duration of at least 10s, like 1h",
                    key: "reconcile.timeout")
            }
            guard (100...1_000_000).contains(maxKeyRows) else {
                throw HubError(
                    code: .invalidConfiguration, message: "must be in 100...1000000", key: "reconcile.max_key_rows")
            }
            return ReconcileSettings(
                interval: every == 0 ? nil : .seconds(every), timeout: .seconds(limit), maxKeyRows: maxKeyRows)
        }

        /// Seconds of `90s`, `30m`, `24h`, `7d` or a bare `0`; nil when malformed.
        static func seconds(_ text: String) -> Int64? {
            if text == "0" { return 0 }
            guard let unit = text.last, let number = Int64(text.dropLast()), number >= 0, number < 1_000_000 else {
                return nil
            }
            switch unit {
            case "s": return number
            case "m": return number * 60
            case "h": return number * 3600
            case "d": return number * 86400
            default: return nil
            }
        }
    }
}

/// Validated reconciliation settings.
public struct ReconcileSettings: Sendable, Hashable {
    /// nil: no schedule.
    public var interval: Duration? = .seconds(86400)
    public var timeout: Duration = .seconds(3600)
    public var maxKeyRows = 20_000

    public init(interval: Duration? = .seconds(86400), timeout: Duration = .seconds(3600), maxKeyRows: Int = 20_000) {
        self.interval = interval
        self.timeout = timeout
        self.maxKeyRows = maxKeyRows
    }
}
