import StarlingIO
import Testing

/// The allocator setting the process restarts with: added to what `GLIBC_TUNABLES` holds, never over the operator's
/// own choice of it.
struct AllocatorTuningTests {
    @Test func theSettingIsAddedToAnAbsentOrEmptyVariable() {
        // Proves an unset or empty variable becomes the setting alone.
        #expect(AllocatorTuning.tunables(to: nil) == AllocatorTuning.tcacheCount)
        #expect(AllocatorTuning.tunables(to: "") == AllocatorTuning.tcacheCount)
        #expect(AllocatorTuning.tcacheCount == "glibc.malloc.tcache_count=4096")
    }

    @Test func otherTunablesAreKept() {
        // Proves the setting is appended after the operator's other tunables, which stay as given.
        #expect(
            AllocatorTuning.tunables(to: "glibc.malloc.mxfast=0:glibc.malloc.arena_max=2")
                == "glibc.malloc.mxfast=0:glibc.malloc.arena_max=2:glibc.malloc.tcache_count=4096")
        // A tunable whose name only starts like it is another tunable.
        #expect(
            AllocatorTuning.tunables(to: "glibc.malloc.tcache_count_max=3")
                == "glibc.malloc.tcache_count_max=3:glibc.malloc.tcache_count=4096")
    }

    @Test(arguments: [
        "glibc.malloc.tcache_count=7", "glibc.malloc.mxfast=0:glibc.malloc.tcache_count=0",
        "glibc.malloc.tcache_count=100:glibc.malloc.arena_max=1",
    ])
    func theOperatorsChoiceWins(current: String) {
        // Proves a variable naming the tunable (anywhere in the list, with any value) is left as it is: no restart.
        #expect(AllocatorTuning.tunables(to: current) == nil)
    }
}
