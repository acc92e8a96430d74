import StarlingCore
import Synchronization

/// The newest log entries, encoded once as they commit, so pulls are answered from memory: every region reads
/// every other region's entries (at R=8 each entry is served seven times), and a pull that starts inside the
/// cached range needs no database round trip and no re-encoding.
///
/// Filled by the sequencer thread after each committed batch (``append(_:through:)``, before the new head is
/// published, so a woken pull finds its entries here); read by pull handlers (``page(after:limit:region:)``).
/// The cache holds one contiguous range of seqs, oldest evicted first past `maxBytes`. Anything that would
/// break the range — a batch whose entries do not follow the cached ones (a repair written outside the batch
/// rows, another hub's batches in between after a failover) — empties it, and pulls read the table until new
/// batches fill it again. A pull outside the range returns nil and reads the table. Thread-safe: one mutex,
/// held only to copy entry references (their bytes are immutable, shared arrays).
final class LogCache: Sendable {
    /// One cached entry: what the per-region filter needs and the entry's JSON object.
    struct Entry: Sendable {
        var origin: String
        var isRewritten: Bool
        var json: [UInt8]
    }

    /// A committed log entry as the sequencer wrote it: the entry and its key and row JSON texts.
    struct Logged: Sendable {
        var entry: LogEntry
        var keyText: String
        var rowText: String?
    }

    private struct State {
        var entries: [Entry] = []
        /// Index in `entries` of the oldest live entry (evicted ones before it are compacted away in bulk).
        var start = 0
        /// Seq of `entries[start]`; `lastSeq + 1` when the cache is empty.
        var firstSeq: Int64 = 1
        /// Seq of the newest cached entry: the head when the cache was last filled.
        var lastSeq: Int64 = 0
        var bytes = 0
    }

    /// At most this many bytes of entry JSON are kept (0: the cache is off).
    let maxBytes: Int
    private let state = Mutex(State())

    init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    /// Adds a committed batch's entries, which must be exactly the seqs after the cached ones up to `head`;
    /// otherwise the cache restarts with them (when they alone are contiguous up to `head`) or empty.
    func append(_ logged: [Logged], through head: Int64) {
        guard maxBytes > 0 else { return }
        let encoded = logged.map(Self.encode)
        let first = logged.first?.entry.seq ?? head + 1
        let isContiguous = zip(logged, logged.dropFirst()).allSatisfy { $1.entry.seq == $0.entry.seq + 1 }
            && (logged.last?.entry.seq ?? head) == head
        state.withLock { state in
            if !isContiguous {
                state = State(firstSeq: head + 1, lastSeq: head)
                return
            }
            if first != state.lastSeq + 1 || state.entries.count == state.start {
                state = State(firstSeq: first, lastSeq: first - 1)
            }
            for entry in encoded {
                state.entries.append(entry)
                state.bytes += entry.json.count
            }
            state.lastSeq = head
            while state.bytes > maxBytes && state.start < state.entries.count {
                state.bytes -= state.entries[state.start].json.count
                state.start += 1
                state.firstSeq += 1
            }
            if state.start > 4096 && state.start * 2 > state.entries.count {
                state.entries.removeFirst(state.start)
                state.start = 0
            }
        }
    }

    /// Forgets everything (the hub lost the sequencer lock: another hub writes the next seqs).
    func reset() {
        state.withLock { $0 = State() }
    }

    /// The page after `after` (up to `limit` seqs scanned, the requester's own non-rewritten entries left
    /// out) when the cache holds every seq from `after + 1` on; nil otherwise.
    func page(after: Int64, limit: Int, region: String) -> HubStore.PullPage? {
        let slice: ArraySlice<Entry>? = state.withLock { state in
            guard after >= state.firstSeq - 1, after < state.lastSeq else { return nil }
            let from = state.start + Int(after + 1 - state.firstSeq)
            let to = state.start + Int(min(after + Int64(limit), state.lastSeq) - state.firstSeq)
            return state.entries[from...to]
        }
        guard let slice else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(slice.reduce(0) { $0 + $1.json.count + 1 })
        var count = 0
        for entry in slice where entry.origin != region || entry.isRewritten {
            if count > 0 { output.append(UInt8(ascii: ",")) }
            output.append(contentsOf: entry.json)
            count += 1
        }
        return HubStore.PullPage(entriesJSON: output, count: count, lastScanned: after + Int64(slice.count))
    }

    private static func encode(_ logged: Logged) -> Entry {
        let entry = logged.entry
        var json: [UInt8] = []
        json.reserveCapacity(160 + logged.keyText.utf8.count + (logged.rowText?.utf8.count ?? 4))
        LogEntry.write(
            base: entry.kind == .repair ? entry.base : nil, hlc: entry.hlc, id: entry.id, keyJSON: logged.keyText,
            kind: entry.kind.rawValue, op: entry.op.rawValue, origin: entry.origin, isRewritten: entry.rewritten,
            rowJSON: logged.rowText, seq: entry.seq, table: entry.table, tx: entry.tx, to: &json)
        return Entry(origin: entry.origin, isRewritten: entry.rewritten, json: json)
    }
}
