import Testing

@testable import StarlingAgent

/// Group commit for WAL-captured pushes (``PushPacing``).
struct PushPacingTests {
    let start = ContinuousClock.now

    /// Proves a push at light load goes at once (the first, after a small one, with nothing or a full batch
    /// queued), that after a busy push the next waits until the window after it has passed, no longer, and that a
    /// push cycle as slow as a distant hub's is never followed by a wait.
    @Test func onlyABusyFastStreamWaitsAndNoLongerThanTheWindow() {
        var pacing = PushPacing()
        #expect(pacing.pause(queued: 5, now: start) == nil, "the first push goes at once")
        pacing.pushed(PushPacing.busyBatch - 1, startedAt: start, endedAt: start + .milliseconds(3))
        #expect(pacing.pause(queued: 5, now: start + .milliseconds(3)) == nil, "after a small push the next goes at once")
        let ended = start + .milliseconds(3)
        pacing.pushed(PushPacing.busyBatch, startedAt: start, endedAt: ended)
        #expect(pacing.pause(queued: 5, now: ended + .milliseconds(1)) == PushPacing.window - .milliseconds(1))
        #expect(pacing.pause(queued: 0, now: ended) == nil, "nothing to push: the loop waits for the decoder")
        #expect(pacing.pause(queued: PushPacing.fullBatch, now: ended) == nil, "a full batch goes at once")
        #expect(pacing.pause(queued: 5, now: ended + PushPacing.window) == nil, "the window is over")
        let slow = ended + PushPacing.slowCycle
        pacing.pushed(500, startedAt: ended, endedAt: slow)
        #expect(pacing.pause(queued: 5, now: slow) == nil, "after a cycle as slow as a distant hub's, no wait")
        pacing.pushed(1, startedAt: slow, endedAt: slow + .milliseconds(2))
        #expect(pacing.pause(queued: 5, now: slow + .milliseconds(2)) == nil, "the stream calmed down")
    }
}
