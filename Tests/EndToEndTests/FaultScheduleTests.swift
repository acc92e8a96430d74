import Testing

/// The fault-schedule generator is pure, bounded and covers every kind of fault.
struct FaultScheduleTests {
    static let regions = (1...8).map { "r\($0)" }

    /// The same seed always gives the same schedule (a printed seed replays the run).
    @Test(arguments: [0, 1, 42, UInt64.max])
    func sameSeedSameSchedule(seed: UInt64) {
        let first = FaultSchedule.generate(seed: seed, regions: Self.regions)
        let second = FaultSchedule.generate(seed: seed, regions: Self.regions)
        #expect(first.description == second.description)
        #expect(first.steps == second.steps)
        #expect(first.replayCommand == "STARLING_FAULT_SEED=\(seed) ops/test --filter EndToEndTests.FaultInjectionTests")
    }

    /// Different seeds give different schedules (at least mostly: 200 seeds, 195+ distinct).
    @Test func seedsDiffer() {
        let schedules = Set((0..<200).map { FaultSchedule.generate(seed: UInt64($0), regions: Self.regions).description })
        #expect(schedules.count >= 195)
    }

    /// Steps are in time order, within the step-count and outage bounds, and name only known regions.
    @Test(arguments: [0, 1, 3, 8, 20])
    func boundedAndOrdered(stepCount: Int) {
        for seed in UInt64(0)..<100 {
            let schedule = FaultSchedule.generate(seed: seed, regions: Self.regions, stepCount: stepCount)
            #expect(schedule.steps.count == min(max(stepCount, 1), FaultSchedule.maxSteps))
            #expect(zip(schedule.steps, schedule.steps.dropFirst()).allSatisfy { $0.at < $1.at })
            #expect(Self.regions.contains(schedule.skewedRegion) && Self.regions.contains(schedule.restartableRegion))
            #expect(schedule.skew >= .seconds(120) && schedule.skew <= .seconds(600))
            for step in schedule.steps {
                switch step.fault {
                case .killAgent(let region, let down), .pauseAgent(let region, for: let down):
                    #expect(Self.regions.contains(region))
                    #expect(down <= .milliseconds(FaultSchedule.maxDownMs))
                case .killHub(let down), .restartRegionPostgres(let down), .restartHubPostgres(let down),
                    .delay(_, for: let down), .truncate(_, for: let down), .refuse(for: let down):
                    #expect(down >= .zero && down <= .milliseconds(FaultSchedule.maxDownMs))
                case .cutConnections:
                    break
                }
            }
        }
    }

    /// Across a few hundred seeds every kind of fault is drawn, so the soak exercises them all.
    @Test func everyFaultKindIsDrawn() {
        var kinds = Set<String>()
        for seed in UInt64(0)..<300 {
            for step in FaultSchedule.generate(seed: seed, regions: Self.regions).steps {
                kinds.insert(step.fault.kind)
            }
        }
        #expect(kinds.count == 9, "\(kinds.sorted())")
    }
}
