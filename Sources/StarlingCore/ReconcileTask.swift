/// One step of a reconciliation the hub asks a region's agent to compute (wire form of
/// `GET /v1/reconcile/task` and of the answer to `POST /v1/reconcile/answer`):
/// `{"run":N,"table":"public.items","step":N,"bits":12,"within_bits":0,"within":[…],"keys":false}`.
///
/// The agent takes the rows of `table` whose key hash has its top `within_bits` bits in `within` (all rows
/// when `within_bits` is 0) and either summarizes them per bucket of `bits` bits or (`keys`) lists each key
/// with its row hash. `step` numbers the hub's requests in a run so a late or repeated answer is recognized.
public struct ReconcileTask: Sendable, Hashable {
    public var run: Int64
    public var table: String
    public var step: Int64
    public var bits: Int
    public var withinBits: Int
    public var within: [Int64]
    public var listsKeys: Bool

    public init(run: Int64, table: String, step: Int64, bits: Int, withinBits: Int, within: [Int64], listsKeys: Bool) {
        self.run = run
        self.table = table
        self.step = step
        self.bits = bits
        self.withinBits = withinBits
        self.within = within
        self.listsKeys = listsKeys
    }

    public var json: JSONValue {
        [
            "run": .integer(run), "table": .string(table), "step": .integer(step), "bits": .integer(bits),
            "within_bits": .integer(withinBits), "within": .array(within.map(JSONValue.integer)),
            "keys": .bool(listsKeys),
        ]
    }

    public init(json: JSONValue) throws(CoreError) {
        let reader = try JSONObjectReader(json, what: "a reconcile task", code: .invalidValue)
        let bits = Int(try reader.int64("bits"))
        let withinBits = Int(try reader.int64("within_bits"))
        guard (1...ReconcileBuckets.maxBits).contains(bits), (0...bits).contains(withinBits) else {
            throw CoreError(code: .invalidValue, message: "reconcile task bits out of range")
        }
        guard let within = json["within"]?.arrayValue else {
            throw CoreError(code: .invalidValue, message: "reconcile task lacks \"within\"")
        }
        var buckets: [Int64] = []
        buckets.reserveCapacity(within.count)
        for item in within {
            guard let bucket = item.int64Value else {
                throw CoreError(code: .invalidValue, message: "reconcile task has a non-integer bucket")
            }
            buckets.append(bucket)
        }
        self.init(
            run: try reader.int64("run"), table: try reader.string("table"), step: try reader.int64("step"),
            bits: bits, withinBits: withinBits, within: buckets, listsKeys: try reader.bool("keys"))
    }
}

/// A region's answer to a ``ReconcileTask``: the pull cursor and outbox of the snapshot it was computed in,
/// then either bucket summaries or keys with row hashes plus the keys with a pending local change:
/// `{"run":N,"table":…,"step":N,"cursor":N,"buckets":[[b,n,h,l],…]}` or
/// `{"run":N,"table":…,"step":N,"cursor":N,"keys":[["{\"id\": 1}","md5hex"],…],"pending":["{\"id\": 2}",…]}`.
public struct ReconcileAnswer: Sendable, Hashable {
    public var run: Int64
    public var table: String
    public var step: Int64
    public var cursor: Int64
    public var buckets: [ReconcileBuckets.Summary]
    public var keys: [ReconcileBuckets.KeyHash]
    public var pending: [String]
    /// True when this answers a key step (`keys` present on the wire).
    public var listsKeys: Bool

    public init(
        run: Int64, table: String, step: Int64, cursor: Int64, buckets: [ReconcileBuckets.Summary] = [],
        keys: [ReconcileBuckets.KeyHash] = [], pending: [String] = [], listsKeys: Bool
    ) {
        self.run = run
        self.table = table
        self.step = step
        self.cursor = cursor
        self.buckets = buckets
        self.keys = keys
        self.pending = pending
        self.listsKeys = listsKeys
    }

    public var json: JSONValue {
        var object: JSONObject = [
            "run": .integer(run), "table": .string(table), "step": .integer(step), "cursor": .integer(cursor),
        ]
        if listsKeys {
            object["keys"] = .array(keys.map { .array([.string($0.key), .string($0.hash)]) })
            object["pending"] = .array(pending.map(JSONValue.string))
        } else {
            object["buckets"] = .array(buckets.map(\.json))
        }
        return .object(object)
    }

    public init(json: JSONValue) throws(CoreError) {
        let reader = try JSONObjectReader(json, what: "a reconcile answer", code: .invalidValue)
        self.init(
            run: try reader.int64("run"), table: try reader.string("table"), step: try reader.int64("step"),
            cursor: try reader.nonNegativeInt64("cursor"), listsKeys: json["keys"] != nil)
        if listsKeys {
            for item in json["keys"]?.arrayValue ?? [] {
                guard let pair = item.arrayValue, pair.count == 2, let key = pair[0].stringValue,
                    let hash = pair[1].stringValue
                else {
                    throw CoreError(code: .invalidValue, message: "a reconcile key must be [key, hash]")
                }
                keys.append(.init(key: key, hash: hash))
            }
            for item in json["pending"]?.arrayValue ?? [] {
                guard let key = item.stringValue else {
                    throw CoreError(code: .invalidValue, message: "a pending key must be a string")
                }
                pending.append(key)
            }
        } else {
            guard let list = json["buckets"]?.arrayValue else {
                throw CoreError(code: .invalidValue, message: "a reconcile answer needs \"buckets\" or \"keys\"")
            }
            buckets = try list.map { item throws(CoreError) in try ReconcileBuckets.Summary(json: item) }
        }
    }
}

/// The SQL both sides hash with, so the agent's and the hub's numbers are comparable by construction.
/// `source` is a FROM item yielding `k` (the key's jsonb text) and `r` (the image's jsonb text) per live row.
public enum ReconcileSQL {
    /// The first 32 bits of `md5(k)`, unsigned, as bigint.
    static let keyHash32 = "('x' || substr(md5(s.k), 1, 8))::bit(32)::bigint"

    /// `WHERE` restricting to the task's buckets; `parameter` is the `bigint[]` placeholder of `within`.
    static func filter(_ task: ReconcileTask, parameter: String) -> String {
        task.withinBits == 0 ? "" : "WHERE (\(keyHash32) >> \(32 - task.withinBits)) = ANY(\(parameter))"
    }

    /// Rows `(bucket, count, sum_high, sum_low)` ordered by bucket.
    public static func summaries(source: String, task: ReconcileTask, parameter: String) -> String {
        """
        SELECT ('x' || substr(x.kh, 1, 8))::bit(32)::bigint >> \(32 - task.bits) AS b, count(*) AS n,
               sum(('x' || substr(x.rh, 1, 8))::bit(32)::bigint)::bigint AS h,
               sum(('x' || substr(x.rh, 9, 8))::bit(32)::bigint)::bigint AS l
        FROM (SELECT md5(s.k) AS kh, md5(s.k || s.r) AS rh FROM \(source) s \(filter(task, parameter: parameter))) x
        GROUP BY 1 ORDER BY 1
        """
    }

    /// Rows `(k, rh)`: each key's jsonb text and row hash (md5 hex).
    public static func keys(source: String, task: ReconcileTask, parameter: String) -> String {
        "SELECT s.k, md5(s.k || s.r) AS rh FROM \(source) s \(filter(task, parameter: parameter))"
    }

    /// The bucket filter alone over an alias `s` with column `k`, for the hub's head lookup of a key step.
    public static func bucketFilter(_ task: ReconcileTask, parameter: String) -> String {
        filter(task, parameter: parameter)
    }
}
