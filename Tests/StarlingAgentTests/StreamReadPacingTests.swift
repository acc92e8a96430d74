import Testing

@testable import StarlingAgent

/// The WAL reader's naps (``StreamReadPacing``).
struct StreamReadPacingTests {
    let start = ContinuousClock.now

    /// Proves the reader naps only while commits arrive less than the busy gap apart, and reads as it comes again
    /// after a slower commit or an idle wait.
    @Test func napsOnlyWhileCommitsCrowd() {
        var pacing = StreamReadPacing()
        pacing.committed(at: start)
        #expect(!pacing.isBusy, "one commit says nothing of the rate")
        pacing.committed(at: start + .microseconds(200))
        #expect(pacing.isBusy)
        pacing.committed(at: start + .microseconds(200) + StreamReadPacing.busyGap)
        #expect(!pacing.isBusy, "a commit a whole gap after the last: light load")
        pacing.committed(at: start + .microseconds(300) + StreamReadPacing.busyGap)
        #expect(pacing.isBusy)
        pacing.idled()
        #expect(!pacing.isBusy)
        pacing.committed(at: start + .seconds(1))
        #expect(!pacing.isBusy, "after an idle wait the first commit starts afresh")
    }
}
