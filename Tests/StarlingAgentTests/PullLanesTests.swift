import StarlingCore
import Testing

@testable import StarlingAgent

/// The pull pipeline's lanes: one pull ahead of the apply on a fast link or while catching up; a second pull
/// staggered by half a round trip when caught up over a slow link; overlapping pages applied once, in order.
struct PullLanesTests {
    /// Entries `seqs` as whole one-entry transactions.
    private func page(after: Int64, _ seqs: ClosedRange<Int64>?, next: Int64? = nil, head: Int64) -> Agent.Fetched {
        let entries = (seqs.map(Array.init) ?? []).map { seq in
            LogEntry(
                seq: seq, origin: "r2", id: "r2:\(seq)", tx: "r2:t\(seq)", table: "public.items", op: .insert,
                key: ["id": .integer(seq)], row: nil, hlc: seq, kind: .change, rewritten: false)
        }
        return Agent.Fetched(batch: entries, after: after, next: next ?? seqs?.upperBound ?? after, head: head)
    }

    /// On loopback (round trips of a few ms) only one pull is ever in flight, as before lanes existed.
    @Test func fastLinkKeepsOnePull() {
        var lanes = PullLanes(cursor: 0)
        #expect(lanes.start() == .zero)
        var cursor: Int64 = 0
        for _ in 0..<20 {
            let (fresh, fetches) = lanes.arrived(page(after: cursor, (cursor + 1)...(cursor + 3), head: cursor + 3),
                                                 elapsed: .milliseconds(2))
            #expect(fresh?.batch.count == 3)
            #expect(fetches == [.zero])
            #expect(lanes.inFlight == 1)
            cursor += 3
        }
    }

    /// Caught up over a 100 ms link, a second pull goes out half a round trip after the first.
    @Test func slowLinkCaughtUpStaggersASecondPull() {
        var lanes = PullLanes(cursor: 10)
        _ = lanes.start()
        let (fresh, fetches) = lanes.arrived(page(after: 10, 11...12, head: 12), elapsed: .milliseconds(100))
        #expect(fresh?.after == 10 && fresh?.next == 12)
        #expect(fetches == [.zero, .milliseconds(50)])
        #expect(lanes.inFlight == 2 && lanes.cursor == 12)
    }

    /// Catching up (the page stopped short of the hub's head), one pull runs ahead, however slow the link.
    @Test func catchingUpKeepsOnePull() {
        var lanes = PullLanes(cursor: 0)
        _ = lanes.start()
        let (_, fetches) = lanes.arrived(page(after: 0, 1...5000, head: 90_000), elapsed: .milliseconds(150))
        #expect(fetches == [.zero])
        #expect(lanes.inFlight == 1)
    }

    /// Caught up on a busy stream (each page a 1,000-change push) over a slow link, one pull runs: a second
    /// would bring every page twice.
    @Test func busyStreamKeepsOnePull() {
        var lanes = PullLanes(cursor: 0)
        _ = lanes.start()
        let (fresh, fetches) = lanes.arrived(page(after: 0, 1...1000, head: 1000), elapsed: .milliseconds(120))
        #expect(fresh?.batch.count == 1000)
        #expect(fetches == [.zero])
        #expect(lanes.inFlight == 1)
    }

    /// A page overlapping what the other pull brought is cut to the unseen entries, starting at the cursor;
    /// a page with nothing new is dropped and, both pulls having come back together, the second is staggered
    /// again. Never more than two in flight; every entry handed on once, in order.
    @Test func overlappingPagesApplyOnceInOrder() {
        var lanes = PullLanes(cursor: 0)
        _ = lanes.start()
        var applied: [Int64] = []
        func take(_ fetched: Agent.Fetched?) {
            guard let fetched else { return }
            #expect(fetched.batch.first.map { $0.seq == fetched.after + 1 } ?? true)
            applied += fetched.batch.map(\.seq)
        }
        // Pull A (after 0) brings 1...3; A' (now) and B (in 50 ms) go out from 3.
        var (fresh, fetches) = lanes.arrived(page(after: 0, 1...3, head: 3), elapsed: .milliseconds(100))
        take(fresh)
        #expect(fetches.count == 2 && lanes.inFlight == 2)
        // A' brings 4...6; its follow-up goes out, no third pull.
        (fresh, fetches) = lanes.arrived(page(after: 3, 4...6, head: 6), elapsed: .milliseconds(100))
        take(fresh)
        #expect(fetches == [.zero] && lanes.inFlight == 2)
        // B started from 3 as well and brings 4...8: only 7...8 are new.
        (fresh, fetches) = lanes.arrived(page(after: 3, 4...8, head: 8), elapsed: .milliseconds(100))
        #expect(fresh?.after == 6)
        take(fresh)
        #expect(fetches == [.zero] && lanes.inFlight == 2)
        // Both pulls waited for entry 9: the first applies it, the second has nothing new and is staggered again.
        (fresh, fetches) = lanes.arrived(page(after: 8, 9...9, head: 9), elapsed: .milliseconds(180))
        take(fresh)
        #expect(fetches == [.zero] && lanes.inFlight == 2)
        (fresh, fetches) = lanes.arrived(page(after: 8, 9...9, head: 9), elapsed: .milliseconds(180))
        #expect(fresh == nil)
        #expect(fetches == [.milliseconds(50)] && lanes.inFlight == 2)
        #expect(applied == Array(1...9))
        #expect(lanes.cursor == 9)
    }

    /// A page that moved the cursor without entries for this region (its own, skipped by the hub) still counts.
    @Test func emptyPageThatMovesTheCursorIsHandedOn() {
        var lanes = PullLanes(cursor: 5)
        _ = lanes.start()
        let (fresh, _) = lanes.arrived(page(after: 5, nil, next: 9, head: 9), elapsed: .milliseconds(1))
        #expect(fresh?.batch.isEmpty == true && fresh?.next == 9)
        #expect(lanes.cursor == 9)
    }
}
