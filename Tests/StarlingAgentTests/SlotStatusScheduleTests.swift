import StarlingPostgres
import Testing

@testable import StarlingAgent

/// The WAL reader's standby status updates: prompt after the confirmable position moves, but not after every move.
struct SlotStatusScheduleTests {
    let start = ContinuousClock.now

    /// Proves the first update goes at once, a moved position waits out the minimum gap (not one update per push's
    /// verdicts), and an unmoved one is repeated once an interval (the server's timeout needs to hear from us).
    @Test func updatesAreSpacedAndRepeated() {
        var schedule = SlotStatusSchedule()
        let (a, b, c) = (LSN(rawValue: 100), LSN(rawValue: 200), LSN(rawValue: 300))
        #expect(schedule.isDue(confirmable: .invalid, now: start), "the first update goes at once")
        schedule.sent(confirmable: a, at: start)
        #expect(!schedule.isDue(confirmable: a, now: start + .milliseconds(10)))
        #expect(
            !schedule.isDue(confirmable: b, now: start + .milliseconds(10)),
            "a moved position waits out the minimum gap")
        #expect(schedule.isDue(confirmable: b, now: start + SlotStatusSchedule.minimumGap))
        schedule.sent(confirmable: b, at: start + SlotStatusSchedule.minimumGap)
        #expect(schedule.confirmedSent == b)
        let later = start + SlotStatusSchedule.minimumGap
        #expect(!schedule.isDue(confirmable: b, now: later + .milliseconds(500)), "nothing moved, interval not over")
        #expect(schedule.isDue(confirmable: b, now: later + SlotStatusSchedule.interval))
        // A reply the server requested (sent whatever the schedule says) counts as an update too.
        schedule.sent(confirmable: a, at: later + .milliseconds(600))
        #expect(schedule.confirmedSent == b, "the position sent never goes back")
        #expect(!schedule.isDue(confirmable: c, now: later + .milliseconds(620)))
        #expect(schedule.isDue(confirmable: c, now: later + .milliseconds(650)))
    }
}
