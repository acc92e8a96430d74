import StarlingAgent
import StarlingCore
import Testing

/// ``LogHistory`` keeps what it derives from its terms (their JSON text, the encoded term id of a request's query)
/// and makes it again only when the terms or the term holding `known` change: these tests prove the kept values
/// always match the position.
@Suite("Log history")
struct LogHistoryTests {
    static let first = LogTerm(id: "a b/1", first: 1, number: 1)
    static let second = LogTerm(id: "c", first: 100, number: 2)

    /// What the kept values must be for `position`.
    static func expected(_ position: LogHistory.Position) -> (terms: String, query: String?) {
        let query = position.knownTerm.map { "known=\(position.known)&term=\(PercentEncoding.encode($0.id))" }
        return (position.terms.json.canonicalText, query)
    }

    static func check(_ history: LogHistory, sourceLocation: SourceLocation = #_sourceLocation) {
        let (position, termsText) = history.currentWithTermsText
        #expect(position == history.current, sourceLocation: sourceLocation)
        let (terms, query) = expected(position)
        #expect(termsText == terms, sourceLocation: sourceLocation)
        #expect(history.queryItems == query, sourceLocation: sourceLocation)
    }

    @Test func keptValuesFollowEveryChange() {
        let history = LogHistory()
        Self.check(history)
        #expect(history.queryItems == nil)
        // (seq the hub told, term its answer named, the query the history makes then)
        let steps: [(seq: Int64, term: LogTerm?, query: String)] = [
            (5, Self.first, "known=5&term=a%20b%2F1"),
            (9, nil, "known=9&term=a%20b%2F1"),
            // A later term learned while `known` is still in the first: the terms' text changes, the query's term not.
            (9, Self.second, "known=9&term=a%20b%2F1"),
            // `known` moves into the second term with no term in the answer: the query names the second term.
            (150, nil, "known=150&term=c"),
        ]
        for step in steps {
            history.learned(seq: step.seq, term: step.term)
            Self.check(history)
            #expect(history.queryItems == step.query)
        }
        history.reset(to: LogHistory.Position(known: 3, terms: LogTerms()))
        Self.check(history)
        #expect(history.queryItems == nil)
        #expect(history.currentWithTermsText.termsText == LogTerms().json.canonicalText)
    }
}
