import StarlingCore
import Synchronization

/// Which pulls the agent's pull pipeline keeps in flight, and what of each returned page is new. Pure: the
/// pipeline (``Agent``'s `pullAndApply`) reports each page that came back and starts the fetches this asks for.
///
/// Why a second pull: a long poll waits at the hub until something is new, but once its answer leaves, nothing
/// waits there until the next request arrives. Over a link of round trip `rtt` that gap is a whole `rtt` (the
/// answer travels back, the next request travels out), and an entry committed in it waits for the next request:
/// at 100 ms that is up to 100 ms of replication latency. So, when the agent is caught up (the page reached the
/// hub's head), the stream is light (pages of at most ``maxEntriesForSecondPull``) and the link is slow (round
/// trips of ``minRoundTrip`` or more), a second pull is started half a round trip after the first: a request then
/// arrives at the hub about every `rtt / 2`. Both pull from the newest cursor known when they start, so their
/// pages overlap; the part already applied is dropped here. Catching up, under a heavy stream (where the overlap
/// would double the pulled bytes and their decoding: seen at 100 ms as every 1,000-entry page pulled twice, W1
/// 0.28x of loopback on a loaded machine) or on a fast link, one pull runs ahead of the apply as before.
///
/// ```
///  page back ──▶ next ≤ cursor? ── yes ─▶ drop it (the other pull brought it); keep a pull going
///                     │ no
///                     ▼
///        keep the entries above the cursor, cursor = next
///        fetch now; caught up, light stream, slow link and < 2 in flight: fetch again in rtt/2
/// ```
/// Invariants: at most ``maxInFlight`` fetches in flight; pages go to the apply in cursor order, each starting
/// at the cursor the previous one ended on (whole origin transactions: every `next` is a transaction boundary,
/// so the entries above one start a transaction).
struct PullLanes {
    /// At most this many pulls in flight.
    static let maxInFlight = 2
    /// Below this round trip a second pull gains less than it costs (the gap is that short): one pull.
    static let minRoundTrip = Duration.milliseconds(20)
    /// Round trips remembered for the estimate (their minimum: long polls that waited are not round trips).
    static let roundTripWindow = 16
    /// Above this many entries in a page the stream is busy: the pulls come back full of entries anyway, and
    /// overlapping pages would cost more than the gap.
    static let maxEntriesForSecondPull = 100

    /// Where the next page to apply starts: the `next` of the last page handed to the apply.
    private(set) var cursor: Int64
    private(set) var inFlight = 0
    private var roundTrips: [Duration] = []

    init(cursor: Int64) {
        self.cursor = cursor
    }

    /// The first fetch of the pipeline: its delay (none).
    mutating func start() -> Duration {
        inFlight += 1
        return .zero
    }

    /// A fetch came back with `page` after `elapsed`. Returns the part of the page to apply (nil when all of it
    /// was applied already) and the delays of the fetches to start now; each fetch reads ``cursor`` when it
    /// starts (through ``PullCursor``).
    mutating func arrived(_ page: Agent.Fetched, elapsed: Duration) -> (page: Agent.Fetched?, fetches: [Duration]) {
        precondition(inFlight > 0, "a page came back that no fetch asked for")
        precondition(page.after <= cursor, "a fetch started above the cursor")
        inFlight -= 1
        roundTrips.append(elapsed)
        if roundTrips.count > Self.roundTripWindow { roundTrips.removeFirst() }
        var fetches: [Duration] = []
        guard page.next > cursor else {
            // The other pull brought all of it. One pull always runs; a second goes out staggered again (the two
            // pulls came back together: they were waiting for the same entry).
            if inFlight == 0 {
                fetches.append(.zero)
            } else if let delay = staggerDelay, Self.isLight(page) {
                fetches.append(delay)
            }
            inFlight += fetches.count
            return (nil, fetches)
        }
        var fresh = page
        if page.after < cursor {
            let start = cursor
            fresh.batch = page.batch.filter { $0.seq > start }
            fresh.after = cursor
        }
        cursor = page.next
        fetches.append(.zero)
        if inFlight + 1 < Self.maxInFlight, Self.isLight(page), let delay = staggerDelay {
            fetches.append(delay)
        }
        inFlight += fetches.count
        return (fresh, fetches)
    }

    /// Whether `page` says the agent is caught up on a light stream: it reached the hub's head with few entries.
    private static func isLight(_ page: Agent.Fetched) -> Bool {
        page.next >= page.head && page.batch.count <= maxEntriesForSecondPull
    }

    /// Half the link's round trip when it is slow enough for a second pull; nil otherwise.
    private var staggerDelay: Duration? {
        guard let roundTrip = roundTrips.min(), roundTrip >= Self.minRoundTrip else { return nil }
        return roundTrip / 2
    }
}

/// The pull pipeline's newest cursor, read by a fetch when it starts (a staggered fetch starts later than it
/// was asked for). Written by the pipeline's loop only.
final class PullCursor: Sendable {
    private let value: Mutex<Int64>

    init(_ cursor: Int64) {
        value = Mutex(cursor)
    }

    var cursor: Int64 {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
