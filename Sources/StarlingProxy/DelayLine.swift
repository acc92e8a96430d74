/// One direction of a proxied connection as a latency line: every chunk read from the source is held until
/// `delay` after it arrived, then written to the destination, in order. Chunks pipeline: a chunk arriving while
/// an earlier one waits gets its own due time, so the line adds latency, never a bandwidth limit (a sleep per
/// chunk would serialise them: n chunks in flight would cost n × delay).
///
/// A plain value owned by its connection's thread (``FaultProxy``); no IO here. Bounded: once `maxQueuedBytes`
/// wait, ``acceptsMore`` is false and the owner stops reading the source (TCP flow control does the rest).
struct DelayLine {
    /// A chunk and the instant it may be written.
    private struct Chunk {
        var due: ContinuousClock.Instant
        var bytes: [UInt8]
    }

    /// The bytes waiting, oldest first; `written` of the first are already out.
    private var chunks: [Chunk] = []
    private var head = 0
    private var written = 0
    private(set) var queuedBytes = 0
    let maxQueuedBytes: Int

    init(maxQueuedBytes: Int = 8 << 20) {
        precondition(maxQueuedBytes > 0, "a delay line holds at least one byte")
        self.maxQueuedBytes = maxQueuedBytes
    }

    var isEmpty: Bool { head == chunks.count }

    /// Whether the owner may read more from the source.
    var acceptsMore: Bool { queuedBytes < maxQueuedBytes }

    /// Queues `bytes`, read at `now`, for `now + delay`. Due times never go backwards (a delay lowered while
    /// chunks wait does not reorder them).
    mutating func arrived(_ bytes: [UInt8], at now: ContinuousClock.Instant, delay: Duration) {
        guard !bytes.isEmpty else { return }
        var due = now + delay
        if !isEmpty, let last = chunks.last, last.due > due { due = last.due }
        chunks.append(Chunk(due: due, bytes: bytes))
        queuedBytes += bytes.count
    }

    /// When the oldest waiting chunk is due (nil when nothing waits).
    var nextDue: ContinuousClock.Instant? { isEmpty ? nil : chunks[head].due }

    /// The unwritten rest of the oldest chunk when it is due at `now`; nil otherwise.
    func dueBytes(at now: ContinuousClock.Instant) -> ArraySlice<UInt8>? {
        guard !isEmpty, chunks[head].due <= now else { return nil }
        return chunks[head].bytes[written...]
    }

    /// Records that `count` bytes of ``dueBytes(at:)`` were written.
    mutating func wrote(_ count: Int) {
        precondition(!isEmpty && count >= 0 && written + count <= chunks[head].bytes.count, "wrote more than was due")
        written += count
        queuedBytes -= count
        guard written == chunks[head].bytes.count else { return }
        head += 1
        written = 0
        if head == chunks.count || head >= 64 {
            chunks.removeFirst(head)
            head = 0
        }
    }
}
