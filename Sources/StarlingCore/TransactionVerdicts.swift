/// The verdicts of a whole chunked origin transaction, in a form whose size grows with its conflicts, not with
/// the transaction: the answer to the push of its last chunk.
///
/// The sequencer decides a staged transaction in one batch and hands out seqs one at a time in change order,
/// so almost every verdict is "accepted at the seq after the previous one". Those are left out; every other
/// verdict (a rejection, a merge, an accepted change at another seq: a re-pushed change answered from its
/// stored verdict) is listed with its ordinal in the transaction. Expanding walks the transaction's change ids
/// with the same rule, so `expand(ids:)` of `init(verdicts:)` gives the verdicts back exactly (tested).
///
/// Wire form: `{"tx":"…","changes":N,"first_seq":S,"exceptions":[{"index":I,<verdict>},…]}`; `first_seq` is
/// the seq the walk starts from (the first seq-bearing verdict's, 0 when none has one).
public struct TransactionVerdicts: Sendable, Hashable {
    /// The origin transaction.
    public var tx: String
    /// How many changes (and verdicts) the transaction has.
    public var count: Int
    /// The seq an accepted change at the start of the walk has.
    public var firstSeq: Int64
    /// Every verdict the walk does not predict, by ordinal, ascending.
    public var exceptions: [(index: Int, verdict: Verdict)]

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.tx == rhs.tx && lhs.count == rhs.count && lhs.firstSeq == rhs.firstSeq
            && lhs.exceptions.map(\.index) == rhs.exceptions.map(\.index)
            && lhs.exceptions.map(\.verdict) == rhs.exceptions.map(\.verdict)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(tx)
        hasher.combine(count)
        hasher.combine(firstSeq)
    }

    /// Compacts the transaction's verdicts, given in change order.
    public init(tx: String, verdicts: [Verdict]) {
        var builder = Builder(tx: tx)
        builder.append(verdicts)
        self = builder.verdicts
    }

    /// Compacts verdicts as they are decided, slice by slice, keeping only the exceptions: a transaction of a
    /// million changes is answered without holding a million verdicts.
    public struct Builder: Sendable {
        public private(set) var verdicts: TransactionVerdicts
        /// The seq the walk predicts for the next accepted change; nil before the first seq.
        private var next: Int64?

        public init(tx: String) {
            verdicts = TransactionVerdicts(tx: tx, count: 0, firstSeq: 0, exceptions: [])
        }

        /// Appends the next verdicts in change order.
        public mutating func append(_ more: some Sequence<Verdict>) {
            for verdict in more {
                let index = verdicts.count
                verdicts.count += 1
                let seq = TransactionVerdicts.seq(of: verdict)
                if next == nil, let seq {
                    verdicts.firstSeq = seq
                    next = seq
                }
                if case .accepted(let accepted) = verdict.outcome, accepted == next {
                    next = accepted + 1
                    continue
                }
                verdicts.exceptions.append((index, verdict))
                if let seq { next = seq + 1 }
            }
        }
    }

    private init(tx: String, count: Int, firstSeq: Int64, exceptions: [(index: Int, verdict: Verdict)]) {
        self.tx = tx
        self.count = count
        self.firstSeq = firstSeq
        self.exceptions = exceptions
    }

    /// The newest seq the verdicts give (0 when none logs an entry), without expanding them.
    public var newestSeq: Int64 {
        var (next, newest) = (firstSeq, Int64(0))
        var pending = exceptions[...]
        for index in 0..<count {
            if let exception = pending.first, exception.index == index {
                pending.removeFirst()
                if let seq = Self.seq(of: exception.verdict) {
                    newest = max(newest, seq)
                    next = seq + 1
                }
            } else {
                newest = max(newest, next)
                next += 1
            }
        }
        return newest
    }

    /// The version each change has after its verdict, in change order (``Verdict/version``: an accepted or merged
    /// change's seq, a rejected one's winner's), without the ids: 8 bytes a change.
    public func versions() -> [Int64] {
        var versions: [Int64] = []
        versions.reserveCapacity(count)
        var next = firstSeq
        var pending = exceptions[...]
        for index in 0..<count {
            if let exception = pending.first, exception.index == index {
                pending.removeFirst()
                versions.append(exception.verdict.version)
                if let seq = Self.seq(of: exception.verdict) { next = seq + 1 }
            } else {
                versions.append(next)
                next += 1
            }
        }
        return versions
    }

    /// The verdicts of the changes `ids` (the transaction's, in the order pushed). Throws when the ids do not
    /// fit (another count, an exception for another id or out of order): the hub answered another transaction.
    public func expand(ids: [String]) throws(CoreError) -> [Verdict] {
        guard ids.count == count else {
            throw CoreError(
                code: .invalidValue, message: "\(count) verdicts for a transaction of \(ids.count) changes",
                field: "changes")
        }
        var expander = Expander(self)
        let verdicts = try expander.next(ids: ids)
        try expander.finish()
        return verdicts
    }

    /// Expands the verdicts slice by slice in change order (a transaction read back from a spill is handled a
    /// slice at a time, never holding a verdict per change): ``next(ids:)`` for each slice's ids, then
    /// ``finish()``. The same checks as ``expand(ids:)``.
    public struct Expander: Sendable {
        private let verdicts: TransactionVerdicts
        private var index = 0
        private var next: Int64
        private var pending: ArraySlice<(index: Int, verdict: Verdict)>

        public init(_ verdicts: TransactionVerdicts) {
            self.verdicts = verdicts
            next = verdicts.firstSeq
            pending = verdicts.exceptions[...]
        }

        /// The verdicts of the next changes, `ids` in the order pushed.
        public mutating func next(ids: some Collection<String>) throws(CoreError) -> [Verdict] {
            guard index + ids.count <= verdicts.count else {
                throw CoreError(
                    code: .invalidValue,
                    message: "\(verdicts.count) verdicts for a transaction of more than \(index + ids.count) changes",
                    field: "changes")
            }
            var expanded: [Verdict] = []
            expanded.reserveCapacity(ids.count)
            for id in ids {
                if let exception = pending.first, exception.index == index {
                    pending.removeFirst()
                    guard exception.verdict.id == id else {
                        throw CoreError(
                            code: .invalidValue,
                            message: "the verdict at \(index) is for \(exception.verdict.id), not \(id)",
                            field: "exceptions")
                    }
                    expanded.append(exception.verdict)
                    if let seq = TransactionVerdicts.seq(of: exception.verdict) { next = seq + 1 }
                } else {
                    expanded.append(Verdict(id: id, outcome: .accepted(seq: next)))
                    next += 1
                }
                index += 1
            }
            return expanded
        }

        /// Checks that every change had its verdict and every exception was used.
        public func finish() throws(CoreError) {
            guard index == verdicts.count else {
                throw CoreError(
                    code: .invalidValue,
                    message: "\(verdicts.count) verdicts for a transaction of \(index) changes", field: "changes")
            }
            guard pending.isEmpty else {
                throw CoreError(
                    code: .invalidValue,
                    message: "exceptions out of order or beyond the transaction's \(verdicts.count) changes",
                    field: "exceptions")
            }
        }
    }

    /// The seq a verdict puts in the log (accepted and merged), nil for a rejection.
    static func seq(of verdict: Verdict) -> Int64? {
        switch verdict.outcome {
        case .accepted(let seq), .merged(let seq, _): seq
        case .rejected: nil
        }
    }

    public init(json: JSONValue) throws(CoreError) {
        let reader = try JSONObjectReader(json, what: "transaction verdicts", code: .invalidValue)
        tx = try reader.string("tx")
        count = Int(try reader.nonNegativeInt64("changes"))
        firstSeq = try reader.nonNegativeInt64("first_seq")
        guard case .array(let items) = try reader.value("exceptions") else {
            throw reader.failure("exceptions", "\"exceptions\" must be an array")
        }
        var exceptions: [(index: Int, verdict: Verdict)] = []
        exceptions.reserveCapacity(items.count)
        for (position, item) in items.enumerated() {
            let index: Int
            do {
                let itemReader = try JSONObjectReader(item, what: "an exception", code: .invalidValue)
                index = Int(try itemReader.nonNegativeInt64("index"))
                exceptions.append((index, try Verdict(json: item)))
            } catch {
                throw error.prefixed(with: "exceptions[\(position)]")
            }
            // Readers index changes by these: ascending and within the transaction, or the answer is refused.
            guard index < count, position == 0 || index > exceptions[position - 1].index else {
                throw CoreError(
                    code: .invalidValue,
                    message: "exception index \(index) is out of order or beyond the transaction's \(count) changes",
                    field: "exceptions[\(position)].index")
            }
        }
        self.exceptions = exceptions
    }

    /// Appends the wire form (exceptions written by ``Verdict/write(to:)`` with `index` in front).
    public func write(to output: inout [UInt8]) {
        output.append(contentsOf: #"{"changes":"#.utf8)
        JSONSerializer.writeInt64(Int64(count), to: &output)
        output.append(contentsOf: #","exceptions":["#.utf8)
        for (position, exception) in exceptions.enumerated() {
            if position > 0 { output.append(UInt8(ascii: ",")) }
            output.append(contentsOf: #"{"index":"#.utf8)
            JSONSerializer.writeInt64(Int64(exception.index), to: &output)
            output.append(UInt8(ascii: ","))
            var verdict: [UInt8] = []
            exception.verdict.write(to: &verdict)
            output.append(contentsOf: verdict.dropFirst())  // its opening brace
        }
        output.append(contentsOf: #"],"first_seq":"#.utf8)
        JSONSerializer.writeInt64(firstSeq, to: &output)
        output.append(contentsOf: #","tx":"#.utf8)
        JSONSerializer.writeString(tx, to: &output)
        output.append(UInt8(ascii: "}"))
    }
}
