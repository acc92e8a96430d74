import StarlingTestSupport
import Testing

/// The real binary restarts itself with the allocator setting (README "Operating it", *Memory allocator*), with the
/// operator's `GLIBC_TUNABLES` kept and their own choice of the setting left alone.
struct AllocatorTuningTests {
    /// The allocator line of `starling version` started with `tunables` as `GLIBC_TUNABLES` (nil: unset).
    private func reported(startedWith tunables: String?) async throws -> String? {
        let process = try ChildProcess.launch(
            try StarlingBinary.path(), ["version"], environment: tunables.map { ["GLIBC_TUNABLES": $0] } ?? [:],
            unsetting: ["GLIBC_TUNABLES"])
        let status = try await process.waitForExit(timeout: .seconds(30))
        #expect(status == 0, "\(process.output)")
        return process.output.split(separator: "\n").first { $0.hasPrefix("allocator: ") }.map(String.init)
    }

    @Test func theBinaryRunsWithTheSetting() async throws {
        // Proves the process runs with the setting when none was given, after the operator's other tunables.
        #expect(try await reported(startedWith: nil) == "allocator: GLIBC_TUNABLES=glibc.malloc.tcache_count=4096")
        #expect(
            try await reported(startedWith: "glibc.malloc.arena_max=2")
                == "allocator: GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.tcache_count=4096")
    }

    @Test func theOperatorsSettingIsLeftAlone() async throws {
        // Proves an explicit value of the same tunable (glibc's default, 7) is what the process runs with.
        #expect(
            try await reported(startedWith: "glibc.malloc.tcache_count=7")
                == "allocator: GLIBC_TUNABLES=glibc.malloc.tcache_count=7")
    }
}
