/// The hub's answer to one pushed change (DESIGN.md "JSON shapes", push verdicts):
/// `{"id":…,"status":"accepted","seq":N}`, `{"id":…,"status":"merged","seq":N,"row":{…}}`,
/// `{"id":…,"status":"rejected","conflict":ID,"winner":{"seq":N,"origin":…,"row":{…}|null}}`.
public struct Verdict: Sendable, Hashable {
    /// The change's id.
    public var id: String
    public var outcome: Outcome

    /// What happened to the change.
    public enum Outcome: Sendable, Hashable {
        /// Appended to the log as pushed at `seq`.
        case accepted(seq: Int64)
        /// Appended at `seq` with the hub's merged image `row`, which the origin must apply.
        case merged(seq: Int64, row: JSONObject)
        /// Not in the log; recorded as conflict `conflict`. The origin applies the winner's image.
        case rejected(conflict: Int64, winner: Winner)
    }

    /// The head that beat a rejected change: the version the origin should hold now.
    public struct Winner: Sendable, Hashable {
        public var seq: Int64
        public var origin: String
        /// `nil` when the winner is a delete.
        public var row: JSONObject?

        public init(seq: Int64, origin: String, row: JSONObject?) {
            self.seq = seq
            self.origin = origin
            self.row = row
        }

        /// The winner a head represents.
        public init(head: Head) {
            self.init(seq: head.seq, origin: head.origin, row: head.image)
        }
    }

    public init(id: String, outcome: Outcome) {
        self.id = id
        self.outcome = outcome
    }

    /// The version of the key the change's region holds once it handled this verdict: the change's seq when
    /// accepted or merged, the winner's when rejected.
    public var version: Int64 {
        switch outcome {
        case .accepted(let seq), .merged(let seq, _): seq
        case .rejected(_, let winner): winner.seq
        }
    }

    /// The `status` string of the wire form.
    public var status: String {
        switch outcome {
        case .accepted: "accepted"
        case .merged: "merged"
        case .rejected: "rejected"
        }
    }

    /// A stored rejected verdict re-sent for a retried change carries the *current* head as winner
    /// (DESIGN.md step 1); other verdicts are returned unchanged.
    public func withCurrentWinner(_ head: Head?) -> Verdict {
        guard case .rejected(let conflict, _) = outcome, let head else { return self }
        return Verdict(id: id, outcome: .rejected(conflict: conflict, winner: Winner(head: head)))
    }

    public init(json: JSONValue) throws(CoreError) {
        let reader = try JSONObjectReader(json, what: "a verdict", code: .invalidValue)
        let id = try reader.string("id")
        switch try reader.string("status") {
        case "accepted":
            self.init(id: id, outcome: .accepted(seq: try reader.nonNegativeInt64("seq")))
        case "merged":
            self.init(id: id, outcome: .merged(seq: try reader.nonNegativeInt64("seq"), row: try reader.object("row")))
        case "rejected":
            let winner = try JSONObjectReader(
                try reader.value("winner"), what: "winner", code: .invalidValue, path: "winner")
            self.init(
                id: id,
                outcome: .rejected(
                    conflict: try reader.int64("conflict"),
                    winner: Winner(
                        seq: try winner.nonNegativeInt64("seq"), origin: try winner.string("origin"),
                        row: try winner.optionalObject("row"))))
        case let other:
            throw reader.failure(
                "status", "\"status\" must be \"accepted\", \"merged\" or \"rejected\", not \"\(other)\"")
        }
    }

    public var json: JSONValue {
        var object: JSONObject = ["id": .string(id), "status": .string(status)]
        switch outcome {
        case .accepted(let seq):
            object["seq"] = .integer(seq)
        case .merged(let seq, let row):
            object["seq"] = .integer(seq)
            object["row"] = .object(row)
        case .rejected(let conflict, let winner):
            object["conflict"] = .integer(conflict)
            object["winner"] = [
                "seq": .integer(winner.seq), "origin": .string(winner.origin),
                "row": winner.row.map(JSONValue.object) ?? .null,
            ]
        }
        return .object(object)
    }

    /// Appends exactly `json.serialized()` without building the intermediate value (the push hot path).
    public func write(to output: inout [UInt8]) {
        switch outcome {
        case .accepted(let seq):
            output.append(contentsOf: #"{"id":"#.utf8)
            JSONSerializer.writeString(id, to: &output)
            output.append(contentsOf: #","seq":"#.utf8)
            JSONSerializer.writeInt64(seq, to: &output)
            output.append(contentsOf: #","status":"accepted"}"#.utf8)
        case .merged(let seq, let row):
            output.append(contentsOf: #"{"id":"#.utf8)
            JSONSerializer.writeString(id, to: &output)
            output.append(contentsOf: #","row":"#.utf8)
            JSONSerializer.writeObject(row, to: &output)
            output.append(contentsOf: #","seq":"#.utf8)
            JSONSerializer.writeInt64(seq, to: &output)
            output.append(contentsOf: #","status":"merged"}"#.utf8)
        case .rejected(let conflict, let winner):
            output.append(contentsOf: #"{"conflict":"#.utf8)
            JSONSerializer.writeInt64(conflict, to: &output)
            output.append(contentsOf: #","id":"#.utf8)
            JSONSerializer.writeString(id, to: &output)
            output.append(contentsOf: #","status":"rejected","winner":{"origin":"#.utf8)
            JSONSerializer.writeString(winner.origin, to: &output)
            output.append(contentsOf: #","row":"#.utf8)
            if let row = winner.row {
                JSONSerializer.writeObject(row, to: &output)
            } else {
                JSONSerializer.writeNull(to: &output)
            }
            output.append(contentsOf: #","seq":"#.utf8)
            JSONSerializer.writeInt64(winner.seq, to: &output)
            output.append(contentsOf: "}}".utf8)
        }
    }
}
