import Testing

@testable import StarlingAgent

/// Group commit for WAL-captured pushes (``PushPacing``).
struct PushPacingTests {
    let start = ContinuousClock.now

    /// Proves a push at light load goes at once (the first, after a small one, with nothing or a full batch
    /// queued), and that after a busy push the next waits until the window after it has passed, no longer.
    @Test func onlyABusyStreamWaitsAndNoLongerThanTheWindow() {
        var pacing = PushPacing()
        #expect(pacing.pause(queued: 5, now: start) == nil, "the first push goes at once")
        pacing.pushed(PushPacing.busyBatch - 1, at: start)
        #expect(pacing.pause(queued: 5, now: start) == nil, "after a small push the next goes at once")
        pacing.pushed(PushPacing.busyBatch, at: start)
        #expect(pacing.pause(queued: 5, now: start + .milliseconds(1)) == PushPacing.window - .milliseconds(1))
        #expect(pacing.pause(queued: 0, now: start) == nil, "nothing to push: the loop waits for the decoder")
        #expect(pacing.pause(queued: PushPacing.fullBatch, now: start) == nil, "a full batch goes at once")
        #expect(pacing.pause(queued: 5, now: start + PushPacing.window) == nil, "the window is over")
        pacing.pushed(1, at: start + PushPacing.window)
        #expect(pacing.pause(queued: 5, now: start + PushPacing.window) == nil, "the stream calmed down")
    }
}
