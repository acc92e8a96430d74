import StarlingCore
import Testing

/// The log's terms: which term holds a seq, how a region records the terms it sees, and where a region's
/// history and a restored hub's part (README "Restoring the hub's store").
struct LogTermsTests {
    static let a = LogTerm(id: "a", first: 1)
    static let b = LogTerm(id: "b", first: 101)
    static let c = LogTerm(id: "c", first: 201)

    @Test func theNewestTermStartingAtOrBeforeASeqHoldsIt() {
        let empty = LogTerm(id: "empty", first: 101)  // opened, then another hub took over before any seq
        let terms = LogTerms([Self.a, empty, Self.b, Self.c])
        #expect(terms.term(holding: 0) == nil)
        #expect(terms.term(holding: 1)?.id == "a")
        #expect(terms.term(holding: 100)?.id == "a")
        #expect(terms.term(holding: 101)?.id == "b", "of two terms opened at one seq, the later holds it")
        #expect(terms.term(holding: 5_000)?.id == "c")
    }

    @Test func termsSeenInAnyOrderAreKeptInSeqOrderOnceEach() {
        var terms = LogTerms()
        terms.crossed(Self.c)
        terms.crossed(Self.a)
        terms.crossed(Self.b)
        terms.crossed(Self.b)
        #expect(terms.terms.map(\.id) == ["a", "b", "c"])
        for index in 0..<(LogTerms.kept + 5) { terms.crossed(LogTerm(id: "t\(index)", first: 1_000 + Int64(index))) }
        #expect(terms.terms.count == LogTerms.kept)
        #expect(terms.newest?.id == "t\(LogTerms.kept + 4)", "the oldest are dropped")
    }

    @Test func termsOpenedAtOneSeqKeepTheHubsOrderWhateverOrderTheyAreSeenIn() {
        let quiet = LogTerm(id: "quiet", first: 101, number: 2)  // a takeover that sequenced nothing
        let next = LogTerm(id: "next", first: 101, number: 3)
        var terms = LogTerms([LogTerm(id: "a", first: 1, number: 1)])
        terms.crossed(next)
        terms.crossed(quiet)  // a late answer from the quiet hub
        #expect(terms.terms.map(\.id) == ["a", "quiet", "next"])
        #expect(terms.term(holding: 150)?.id == "next", "the seq the hub holds under its later term")
    }

    @Test func aHubWithTheSameHistoryAgreesToTheEnd() {
        let region = LogTerms([Self.a, Self.b])
        let hub = LogTerms([Self.a, Self.b, Self.c])  // the hub moved on: a takeover after the region's last pull
        #expect(region.commonPoint(known: 150, hub: hub) == 150)
    }

    @Test func aStoreRestoredInsideTheRegionsTermPartsWhereTheNextHubTermStarts() {
        // The region knew up to 180 in term b; the store was restored to 160 and a new term d starts at 161.
        let region = LogTerms([Self.a, Self.b])
        let hub = LogTerms([Self.a, Self.b, LogTerm(id: "d", first: 161)])
        #expect(region.commonPoint(known: 180, hub: hub) == 160)
    }

    @Test func aTermTheStoreLostEndsTheCommonHistoryBeforeIt() {
        // The region crossed c (opened at 201) and knew up to 250; the store restored to 180 never saw c.
        let region = LogTerms([Self.a, Self.b, Self.c])
        let hub = LogTerms([Self.a, Self.b, LogTerm(id: "d", first: 181)])
        #expect(region.commonPoint(known: 250, hub: hub) == 180)
    }

    @Test func noSharedTermMeansStartingOver() {
        let region = LogTerms([Self.b])
        let hub = LogTerms([LogTerm(id: "x", first: 1)])
        #expect(region.commonPoint(known: 150, hub: hub) == 0)
    }

    @Test func aTermWithAnotherFirstSeqIsNotTheSameHistory() {
        let region = LogTerms([Self.a, Self.b])
        let hub = LogTerms([Self.a, LogTerm(id: "b", first: 120)])
        #expect(region.commonPoint(known: 150, hub: hub) == 100)
    }

    @Test func throughDropsTermsStartingAfterTheRewind() {
        #expect(LogTerms([Self.a, Self.b, Self.c]).through(150).terms.map(\.id) == ["a", "b"])
    }

    @Test func termsRoundTripThroughTheirWireForm() throws {
        let terms = LogTerms([Self.a, Self.b])
        #expect(try LogTerms(json: terms.json) == terms)
        #expect(throws: CoreError.self) { try LogTerms(json: .object([:])) }
        #expect(throws: CoreError.self) { try LogTerms(json: .array([.object(["id": "x"])])) }
    }

    @Test func aPullPageCarriesTheTermHoldingItsNext() throws {
        let numbered = LogTerm(id: "b", first: 101, number: 4)
        for term in [Self.b, numbered] {
            let page = PullPage(entries: [], next: 150, head: 150, term: term)
            var written: [UInt8] = []
            PullPage.write(entriesJSON: [], head: 150, next: 150, term: term, to: &written)
            #expect(written == page.json.serialized(), "the hub's writer and the value agree byte for byte")
            #expect(try PullPage(json: page.json).term == term)
        }
        let page = PullPage(entries: [], next: 150, head: 150, term: Self.b)
        #expect(try PullPage(json: page.json) == page)
        #expect(try PullPage(json: PullPage(entries: [], next: 1, head: 1).json).term == nil)
    }

    @Test func theHubConfigCarriesTheTerms() throws {
        var config = HubConfig(region: "r1", tables: [])
        config.logTerms = LogTerms([Self.a, Self.b])
        #expect(try HubConfig(json: config.json).logTerms == config.logTerms)
        #expect(try HubConfig(json: HubConfig(region: "r1", tables: []).json).logTerms.isEmpty)
    }
}
