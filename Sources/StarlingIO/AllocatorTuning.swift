import Glibc

/// glibc's allocator settings the process runs with (README "Operating it", *Memory allocator*).
///
/// Starling allocates and frees in bursts: an agent reads a pull page of thousands of entries (each a few small
/// objects) and frees them together once the page is applied; the hub does the same with each push. glibc keeps at
/// most 7 freed chunks of a size per thread in its cache (`tcache`); the rest go to the fast bins, and the next free
/// of a large buffer (a page's bytes) merges every fast-bin chunk into the heap (`malloc_consolidate`), so the next
/// page's allocations are carved out of the heap again (`_int_malloc`). With a cache that holds a whole page's
/// chunks, the churn stays in the per-thread cache: W1 R=8 ran 10,723 against 10,191 changes a second (medians of
/// five alternated pairs of runs, 2026-12-08, `ops/bench/replicate`; 10,434 against 9,571 in three earlier pairs).
///
/// glibc reads its tunables only when a process starts, from `GLIBC_TUNABLES`; `mallopt` has no tcache setting.
/// So the process starts itself again (same pid, arguments and descriptors) with the setting added, once: unless
/// `GLIBC_TUNABLES` names `glibc.malloc.tcache_count` already (the operator's choice wins; `…=7` is glibc's
/// default), or the restart fails (the process then goes on with glibc's defaults).
public enum AllocatorTuning {
    /// The tunable and the value the process runs with. Freed chunks beyond it go to the fast bins as before; what
    /// the caches may hold is bounded by threads × sizes in use × 4,096 chunks (chunks up to 1,032 bytes).
    public static let tcacheCount = "glibc.malloc.tcache_count=4096"

    /// `GLIBC_TUNABLES` as it should be given `current` (nil: unset); nil when it stays as it is.
    public static func tunables(adding setting: String = tcacheCount, to current: String?) -> String? {
        guard let current, !current.isEmpty else { return setting }
        let name = setting.prefix { $0 != "=" }
        let named = current.split(separator: ":").contains { $0.prefix { $0 != "=" } == name }
        return named ? nil : current + ":" + setting
    }

    /// `GLIBC_TUNABLES` as this process sees it (nil: unset): after ``restartIfNeeded()``, the settings it runs with.
    public static var current: String? { getenv("GLIBC_TUNABLES").map { String(cString: $0) } }

    /// Restarts the process with ``tcacheCount`` when `GLIBC_TUNABLES` lacks it; returns only when it does not
    /// restart.
    public static func restartIfNeeded() {
        let current = current
        guard let wanted = tunables(to: current), setenv("GLIBC_TUNABLES", wanted, 1) == 0 else { return }
        // On success execv does not return: the new image inherits the environment just set.
        _ = execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Not restarted (no /proc, say): the environment goes back to what the process was given, so that the
        // processes it starts are not tuned where it is not.
        if let current { setenv("GLIBC_TUNABLES", current, 1) } else { unsetenv("GLIBC_TUNABLES") }
    }
}
