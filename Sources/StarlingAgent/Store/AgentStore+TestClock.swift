import Glibc

extension AgentStore {
    /// Test-only: `STARLING_CLOCK_OFFSET_MS` (a signed integer of milliseconds) shifts this agent's HLC input,
    /// so a fault test can run one region's clock minutes ahead of the others without changing the machine's
    /// clock. Unset, empty or unparsable: 0. Not a configuration key on purpose: no operator should set it.
    static func testClockOffsetMicros() -> Int64 {
        guard let value = getenv("STARLING_CLOCK_OFFSET_MS"), let ms = Int64(String(cString: value)) else { return 0 }
        return ms.multipliedReportingOverflow(by: 1000).overflow ? 0 : ms * 1000
    }
}
