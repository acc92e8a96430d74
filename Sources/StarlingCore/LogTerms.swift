/// The identity of the hub's log over time: every time a hub becomes the sequencer it opens a *term*, a random
/// id with the first seq it will assign (DESIGN.md "Restoring the hub's store"). Seqs alone cannot tell two
/// histories apart: a store restored to an earlier point hands out again the seqs it lost, for other changes.
/// A term id can: it is random, so a term opened after the restore is never one a region saw before.
///
/// A region remembers the terms it crossed (``LogTerms``, newest last) and sends the id of the term holding
/// its newest known seq; the hub refuses (409 `log_diverged`) when its own log holds that seq under another
/// term (or not at all), and the region finds with ``commonPoint(known:hub:)`` where the two histories part.
public struct LogTerm: Sendable, Hashable {
    /// Random, unique for all time (a UUID in text form).
    public var id: String
    /// The first seq of the term (the head when the term opened, plus one).
    public var first: Int64
    /// The order the hub opened it in (`log_terms.number`): tells apart two terms opened at the same seq (a
    /// takeover that sequenced nothing). Nil from a hub that does not say.
    public var number: Int64?

    public init(id: String, first: Int64, number: Int64? = nil) {
        self.id = id
        self.first = first
        self.number = number
    }

    /// `{"first":N,"id":"…","number":N}`.
    public var json: JSONValue {
        var object: JSONObject = ["id": .string(id), "first": .integer(first)]
        if let number { object["number"] = .integer(number) }
        return .object(object)
    }

    /// Appends exactly `json.serialized()`, without building the value (pull pages and push answers carry one).
    public func write(to output: inout [UInt8]) {
        output.append(contentsOf: #"{"first":"#.utf8)
        JSONSerializer.writeInt64(first, to: &output)
        output.append(contentsOf: #","id":"#.utf8)
        JSONSerializer.writeString(id, to: &output)
        if let number {
            output.append(contentsOf: #","number":"#.utf8)
            JSONSerializer.writeInt64(number, to: &output)
        }
        output.append(UInt8(ascii: "}"))
    }

    public init(json: JSONValue) throws(CoreError) {
        let reader = try JSONObjectReader(json, what: "a log term", code: .invalidValue)
        self.init(
            id: try reader.string("id", maxBytes: 64), first: try reader.nonNegativeInt64("first"),
            number: try reader.optionalInt64("number"))
    }

    /// Whether this term was opened before `other`: by first seq, then by the hub's number.
    func opened(before other: LogTerm) -> Bool {
        (first, number ?? 0) < (other.first, other.number ?? 0)
    }
}

/// Terms in the order they were opened (oldest first). Pure.
public struct LogTerms: Sendable, Hashable {
    public private(set) var terms: [LogTerm]

    /// The most terms a region keeps (older ones are forgotten: a divergence further back than that many hub
    /// activations finds no common term, and the region re-asserts against all of the hub's heads: it costs a
    /// deeper rewind, never a miss).
    public static let kept = 32

    public init(_ terms: [LogTerm] = []) {
        self.terms = terms
    }

    public var isEmpty: Bool { terms.isEmpty }
    public var newest: LogTerm? { terms.last }

    /// The term holding `seq`: the newest opened with `first ≤ seq`. A term opened when the head had not moved
    /// since the one before holds nothing, so two terms with the same `first` resolve to the later one.
    public func term(holding seq: Int64) -> LogTerm? {
        terms.last { $0.first <= seq }
    }

    /// Records a term the region saw (a pull page's or a push answer's): inserted in the order the hub opened
    /// them when new (answers of two hubs can arrive in either order); the oldest beyond ``kept`` are dropped.
    public mutating func crossed(_ term: LogTerm) {
        guard !terms.contains(where: { $0.id == term.id }) else { return }
        let index = terms.lastIndex { !term.opened(before: $0) }.map { $0 + 1 } ?? 0
        terms.insert(term, at: index)
        if terms.count > Self.kept { terms.removeFirst(terms.count - Self.kept) }
    }

    /// Where this region's history (its terms, and seqs up to `known`) and the hub's part: every seq up to the
    /// returned one is the same entry in both; after it the region saw entries the hub does not hold (its store
    /// was restored to an earlier point). The newest term both have bounds it: the common history ends where the
    /// next term starts on either side, or at `known`. 0 when they share no term (the region starts over).
    public func commonPoint(known: Int64, hub: LogTerms) -> Int64 {
        let hubIndex = Dictionary(hub.terms.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        for (index, term) in terms.enumerated().reversed() {
            guard let at = hubIndex[term.id], hub.terms[at].first == term.first else { continue }
            var end = known
            if index + 1 < terms.count { end = min(end, terms[index + 1].first - 1) }
            if at + 1 < hub.terms.count { end = min(end, hub.terms[at + 1].first - 1) }
            return max(0, min(end, known))
        }
        return 0
    }

    /// The list without the terms that start after `seq` (after a rewind to `seq`).
    public func through(_ seq: Int64) -> LogTerms {
        LogTerms(terms.filter { $0.first <= seq })
    }

    /// `[{"id","first"},…]`, oldest first.
    public var json: JSONValue { .array(terms.map(\.json)) }

    public init(json: JSONValue) throws(CoreError) {
        guard let items = json.arrayValue else {
            throw CoreError(code: .invalidValue, message: "log terms must be an array")
        }
        var terms: [LogTerm] = []
        terms.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            do {
                terms.append(try LogTerm(json: item))
            } catch {
                throw error.prefixed(with: "terms[\(index)]")
            }
        }
        self.init(terms)
    }
}
