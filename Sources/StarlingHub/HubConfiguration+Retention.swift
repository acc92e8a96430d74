import StarlingCore

/// `retention` in `hub.yaml`: how long the log keeps entries every active region has pulled, and how it is cut
/// into partitions (README "Retention"; ``LogRetention`` does the work).
///
/// ```yaml
/// retention: {window: 7d, partition_entries: 1000000, inactive_after: 30d, check_interval: 1m}
/// ```
extension HubConfiguration {
    public struct Retention: Sendable, Hashable, Decodable {
        /// Entries younger than this are kept even when every region has pulled them. Default `7d`; a number
        /// with unit `s`, `m`, `h` or `d`; `0s` prunes as soon as every active region is past a partition.
        public var window: String = "7d"
        /// Seqs per log partition (the unit retention drops). Default 1 000 000; 1 to 1 000 000 000. A size
        /// far below `limits.max_batch_changes` makes one batch create many partitions.
        public var partitionEntries: Int = 1_000_000
        /// A region that has not pulled for this long stops holding the log back (it re-bootstraps when it
        /// returns). A region that never pulled counts as inactive. Default `30d`.
        public var inactiveAfter: String = "30d"
        /// How often the hub looks for partitions to drop. Default `1m`; 1 s to 1 d.
        public var checkInterval: String = "1m"

        public init() {}
    }
}

extension HubConfiguration.Retention {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: ConfigurationKey.self)
        try c.rejectUnknownKeys(["window", "partition_entries", "inactive_after", "check_interval"])
        let d = HubConfiguration.Retention()
        self.init()
        window = try c.value("window", default: d.window)
        partitionEntries = try c.value("partition_entries", default: d.partitionEntries)
        inactiveAfter = try c.value("inactive_after", default: d.inactiveAfter)
        checkInterval = try c.value("check_interval", default: d.checkInterval)
    }

    /// Checks the values; errors name `retention.<key>`.
    func validate() throws(HubError) -> HubSettings.Retention {
        func seconds(_ text: String, _ key: String, _ range: ClosedRange<Int64>) throws(HubError) -> Int64 {
            guard let value = Self.seconds(text), range.contains(value) else {
                throw HubError(
                    code: .invalidConfiguration,
                    message: "\"\(text)\" is not a duration such as 90s, 30m, 12h or 7d between \(range.lowerBound) "
                        + "and \(range.upperBound) seconds", key: "retention." + key)
            }
            return value
        }
        guard (1...1_000_000_000).contains(partitionEntries) else {
            throw HubError(
                code: .invalidConfiguration, message: "\(partitionEntries) is outside 1...1000000000",
                key: "retention.partition_entries")
        }
        return HubSettings.Retention(
            windowSeconds: try seconds(window, "window", 0...(3650 * 86_400)),
            partitionEntries: Int64(partitionEntries),
            inactiveAfterSeconds: try seconds(inactiveAfter, "inactive_after", 1...(3650 * 86_400)),
            checkIntervalSeconds: try seconds(checkInterval, "check_interval", 1...86_400))
    }

    /// `90s`, `30m`, `12h`, `7d` in seconds; nil when malformed.
    static func seconds(_ text: String) -> Int64? {
        guard let unit = text.last, let number = Int64(text.dropLast()), number >= 0, number < 1 << 40 else {
            return nil
        }
        switch unit {
        case "s": return number
        case "m": return number * 60
        case "h": return number * 3600
        case "d": return number * 86_400
        default: return nil
        }
    }
}

extension HubSettings {
    /// The validated retention settings (``HubConfiguration/Retention``).
    public struct Retention: Sendable, Hashable {
        public var windowSeconds: Int64 = 7 * 86_400
        public var partitionEntries: Int64 = 1_000_000
        public var inactiveAfterSeconds: Int64 = 30 * 86_400
        public var checkIntervalSeconds: Int64 = 60
    }
}
