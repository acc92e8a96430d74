import StarlingTestSupport

/// A seeded fault schedule for one fault-injection run: which region runs with its clock minutes ahead,
/// which region has its own restartable Postgres, and a list of timed faults. Pure: the same seed and
/// regions always give the same schedule, so a failure replays from its printed seed.
///
/// The executor runs the steps one after another: a step starts at `at` (from the start of the run) or when
/// the previous step has finished, whichever is later, and a step with a duration ends its own fault (the
/// killed process is restarted, the stopped agent continued, the proxy healed) before the next begins.
struct FaultSchedule: Sendable, CustomStringConvertible {
    /// One fault.
    enum Fault: Sendable, Hashable, CustomStringConvertible {
        /// kill -9 of an agent, restarted after `down`.
        case killAgent(String, down: Duration)
        /// kill -9 of the hub, restarted after `down`.
        case killHub(down: Duration)
        /// SIGSTOP of an agent (a partition: its connections stay open but nothing moves), SIGCONT after `for`.
        case pauseAgent(String, for: Duration)
        /// `pg_ctl -m immediate stop` of the region's own Postgres, started again after `down`.
        case restartRegionPostgres(down: Duration)
        /// `pg_ctl -m immediate stop` of the hub's Postgres, started again after `down`.
        case restartHubPostgres(down: Duration)
        /// Every agent↔hub connection reset at once.
        case cutConnections
        /// Added latency on every agent↔hub chunk for a while.
        case delay(Duration, for: Duration)
        /// Connections opened in the window close after `bytes` bytes (mid-request or mid-response).
        case truncate(bytes: Int, for: Duration)
        /// New connections refused for a while (open ones are cut first).
        case refuse(for: Duration)

        /// The fault's kind without its parameters (for coverage checks).
        var kind: String {
            switch self {
            case .killAgent: "killAgent"
            case .killHub: "killHub"
            case .pauseAgent: "pauseAgent"
            case .restartRegionPostgres: "restartRegionPostgres"
            case .restartHubPostgres: "restartHubPostgres"
            case .cutConnections: "cutConnections"
            case .delay: "delay"
            case .truncate: "truncate"
            case .refuse: "refuse"
            }
        }

        var description: String {
            switch self {
            case .killAgent(let region, let down): "kill -9 agent \(region), down \(down)"
            case .killHub(let down): "kill -9 hub, down \(down)"
            case .pauseAgent(let region, let duration): "SIGSTOP agent \(region) for \(duration)"
            case .restartRegionPostgres(let down): "restart region Postgres, down \(down)"
            case .restartHubPostgres(let down): "restart hub Postgres, down \(down)"
            case .cutConnections: "cut every connection"
            case .delay(let delay, let duration): "delay \(delay) for \(duration)"
            case .truncate(let bytes, let duration): "truncate after \(bytes) bytes for \(duration)"
            case .refuse(let duration): "refuse connections for \(duration)"
            }
        }
    }

    /// A fault and when it starts.
    struct Step: Sendable, Hashable {
        var at: Duration
        var fault: Fault
    }

    let seed: UInt64
    /// The region whose HLC input runs ahead of the others, and by how much.
    let skewedRegion: String
    let skew: Duration
    /// The region whose database lives on its own Postgres cluster (the one `restartRegionPostgres` hits).
    let restartableRegion: String
    let steps: [Step]

    /// Bounds of a generated schedule.
    static let maxSteps = 8
    static let defaultStepCount = 6
    /// The longest outage of one step, in milliseconds.
    static let maxDownMs = 2500

    /// The schedule for `seed` over `regions` (at least one), with `stepCount` faults (clamped to 1...maxSteps).
    static func generate(seed: UInt64, regions: [String], stepCount: Int = defaultStepCount) -> FaultSchedule {
        precondition(!regions.isEmpty, "a schedule needs a region")
        var random = SplitMix64(seed: seed ^ 0xFA17_5C4E_D01E_0000)
        func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
        func millis(_ range: ClosedRange<Int>) -> Duration {
            .milliseconds(range.lowerBound + Int(random.next() % UInt64(range.count)))
        }
        let skewedRegion = pick(regions)
        let skew = Duration.seconds(60 * (2 + Int(random.next() % 9)))  // 2 to 10 minutes ahead
        let restartableRegion = pick(regions)
        var steps: [Step] = []
        var at = Duration.zero
        for _ in 0..<min(max(stepCount, 1), maxSteps) {
            at += millis(300...1500)
            let fault: Fault
            switch random.next() % 9 {
            case 0: fault = .killAgent(pick(regions), down: millis(0...1500))
            case 1: fault = .killHub(down: millis(200...maxDownMs))
            case 2: fault = .pauseAgent(pick(regions), for: millis(500...maxDownMs))
            case 3: fault = .restartRegionPostgres(down: millis(0...1500))
            case 4: fault = .restartHubPostgres(down: millis(0...1500))
            case 5: fault = .cutConnections
            case 6: fault = .delay(millis(20...300), for: millis(500...maxDownMs))
            case 7: fault = .truncate(bytes: 1 + Int(random.next() % 4000), for: millis(300...1500))
            default: fault = .refuse(for: millis(300...1500))
            }
            steps.append(Step(at: at, fault: fault))
        }
        return FaultSchedule(
            seed: seed, skewedRegion: skewedRegion, skew: skew, restartableRegion: restartableRegion, steps: steps)
    }

    var description: String {
        var text = "seed \(seed): \(skewedRegion) clock ahead by \(skew); \(restartableRegion) on its own Postgres"
        for step in steps { text += "\n  at \(step.at): \(step.fault)" }
        return text
    }

    /// The command that replays this schedule (the step count only when it is not the default).
    var replayCommand: String {
        let steps = self.steps.count == Self.defaultStepCount ? "" : "STARLING_FAULT_STEPS=\(self.steps.count) "
        return "STARLING_FAULT_SEED=\(seed) \(steps)ops/test --filter EndToEndTests.FaultInjectionTests"
    }
}
