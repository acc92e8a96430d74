import Glibc

extension AgentCommand {
    /// Test-only: `STARLING_CLOCK_OFFSET_MS` (a signed integer of milliseconds) shifts this agent's HLC input,
    /// so a fault test can run one region's clock minutes ahead of the others without changing the machine's
    /// clock. Unset, empty, unparsable or out of range: zero. Not a configuration key on purpose: no operator
    /// should set it. Read where the process starts (`starling agent`, and `starling demo` for its agents) and
    /// passed to ``Agent`` like any other setting.
    static func testClockOffset() -> Duration {
        guard let value = getenv("STARLING_CLOCK_OFFSET_MS"), let ms = Int64(String(cString: value)),
            !ms.multipliedReportingOverflow(by: 1000).overflow
        else { return .zero }
        return .milliseconds(ms)
    }
}
