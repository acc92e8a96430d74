public import Logging
import Glibc
public import StarlingCore
public import StarlingPostgres

/// Reads the region's replication slot on its own thread and feeds ``CaptureQueue``: opens a replication
/// connection (the capture settings as session options, so values arrive in the trigger's text forms),
/// creates the slot when missing, streams from where ``WALState`` says decoding resumes, and sends the slot
/// the position the queue may confirm. A broken connection is reopened with backoff; decoding then resumes
/// from the last confirmed position, and changes decoded again keep their ids (the hub answers them from the
/// verdicts it stored).
final class WALCapture: Sendable {
    /// Session settings of the replication connection (TableSQL's capture settings).
    static let sessionOptions =
        "-c extra_float_digits=1 -c bytea_output=hex -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c TimeZone=UTC"
    /// How often the decoder's state is offered to the queue as a checkpoint.
    static let checkpointInterval = Duration.seconds(1)

    let url: String
    let region: String
    let queue: CaptureQueue
    let logger: Logger

    init(url: String, region: String, queue: CaptureQueue, logger: Logger) {
        self.url = url
        self.region = region
        self.queue = queue
        self.logger = logger
    }

    /// Decodes until `isStopped`, on the calling thread (blocking). `start` is the state at the last confirmed
    /// position. Throws on a failure of the stream; the caller reconnects with backoff (a new queue).
    /// While the queue holds `maxQueued` changes or more, the stream is not read (the WAL sender waits on its
    /// socket and the slot keeps the WAL); status updates go on, so the server does not time the connection out.
    func stream(
        name: String, originName: String, start: WALState, ledger: CaptureLedger, lastHLC: Int64,
        clockOffsetMicros: Int64, shapes: [TableShape], schemas: WALSchemas, spill: WALDecoder.Spill, maxQueued: Int,
        isStopped: () -> Bool
    ) throws {
        let connection = try PostgresReplicationConnection.connect(
            url: url, applicationName: "starling-agent-\(region)-wal", parameters: [("options", Self.sessionOptions)])
        defer { connection.close() }
        var decoder = WALDecoder(
            region: region, originName: originName, ledger: ledger, switching: start.switching, lastHLC: lastHLC,
            clockOffsetMicros: clockOffsetMicros, shapes: shapes, schemas: schemas, spill: spill)
        let options = try PgOutputOptions(publications: [name], includesMessages: true).options()
        do throws(PostgresError) {
            try connection.startLogical(slot: name, from: start.resume ?? .invalid, options: options)
        } catch {
            // The slot was created with the plugin and the server no longer loads it (removed, or not listed in
            // output_plugin_libraries after an upgrade to 15.19 or later): the slot cannot change plugin.
            guard error.message.contains(OutputPlugin.starlingPgoutput.rawValue) else { throw error }
            throw AgentError(
                code: .capture,
                message: "slot \(name) decodes with starling_pgoutput, which the server refuses: \(error.message); "
                    + "install it again (ops/decoder/install) and list it in output_plugin_libraries, or uninstall the "
                    + "agent and bootstrap the region again to decode with pgoutput")
        }
        logger.info("WAL capture streaming", metadata: ["agent.slot": "\(name)", "agent.from": "\(start.resume ?? .invalid)"])
        queue.recordVersions(ledger.versions.filter { $0.value > ledger.cursor })
        var schedule = SlotStatusSchedule()
        var pacing = StreamReadPacing()
        var isPaused = false
        var lastCheckpoint = ContinuousClock.now
        /// Hands the queue the decoder's state at transaction boundary `resume`, at most once a status interval.
        func offerCheckpoint(at resume: LSN) {
            guard queue.wantsCheckpoint, ContinuousClock.now - lastCheckpoint >= Self.checkpointInterval else { return }
            queue.offer(resume: resume, ledger: decoder.ledger, switching: decoder.switching, hlc: decoder.clock.last)
            lastCheckpoint = .now
        }
        while !isStopped() {
            if !isPaused && queue.depth >= maxQueued && !queue.isDecoderWanted {
                isPaused = true
                logger.warning(
                    "capture queue full: decoding paused until pushes drain it (the slot keeps the WAL)",
                    metadata: ["agent.queued": "\(queue.depth)"])
            }
            if isPaused {
                if queue.depth < maxQueued / 2 || queue.isDecoderWanted {
                    isPaused = false
                    logger.info(
                        queue.isDecoderWanted
                            ? "decoding resumed past the capture queue's bound: a push waits for the decoder"
                            : "capture queue drained: decoding resumed")
                } else {
                    usleep(50_000)
                }
            } else if let message = try Self.next(connection, pacing: &pacing) {
                switch message {
                case .xLogData(let data):
                    guard let finished = try decoder.feed(data.payload, recordLSN: data.walStart) else { continue }
                    pacing.committed(at: .now)
                    if let point = finished.rewind { queue.rewind(to: point) }
                    queue.markOverwritten(finished.overwritten)
                    queue.recordVersions(finished.versions)
                    queue.append(schemaChanges: finished.schemaChanges)
                    if let spilled = finished.spilled {
                        logger.info(
                            "large transaction decoded to a scratch file",
                            metadata: ["agent.changes": "\(spilled.count)", "agent.tx": "\(spilled.tx)"])
                        queue.append(spilled: spilled)
                    } else {
                        queue.append(finished.changes, commitEnd: finished.commitEnd)
                    }
                    offerCheckpoint(at: finished.commitEnd)
                case .keepalive(let keepalive):
                    if !decoder.isInTransaction {
                        queue.decoded(through: keepalive.walEnd)
                        offerCheckpoint(at: keepalive.walEnd)
                    }
                    if keepalive.isReplyRequested {
                        schedule.sent(confirmable: try sendStatus(connection), at: .now)
                    }
                }
            }
            if schedule.isDue(confirmable: queue.confirmable, now: .now) {
                schedule.sent(confirmable: try sendStatus(connection), at: .now)
            }
        }
        try? connection.stopStreaming(timeout: .seconds(5))
    }

    /// The stream's next message, nil when none came within 100 ms. While the stream is busy
    /// (``StreamReadPacing``), a message already buffered comes at once, and with none the reader naps before it
    /// looks at the socket. Asking the socket first (`next(timeout: .zero)`) often found a message already there under
    /// a steady stream and read on instead of napping: 1,555 `poll`s and 990 `recv`s a second at
    /// `ops/bench/capture-overhead`'s ~5,000 one-row transactions a second, against 765 and 770 in this order
    /// (2026-12-07).
    private static func next(
        _ connection: PostgresReplicationConnection, pacing: inout StreamReadPacing
    ) throws -> PostgresReplicationMessage? {
        if pacing.isBusy {
            if let message = try connection.bufferedMessage() { return message }
            usleep(StreamReadPacing.napMicroseconds)
        }
        let message = try connection.next(timeout: .milliseconds(100))
        if message == nil { pacing.idled() }
        return message
    }

    /// Tells the slot the queue's confirmable position; returns it.
    private func sendStatus(_ connection: PostgresReplicationConnection) throws -> LSN {
        let confirmable = queue.confirmable
        try connection.sendStatus(written: max(confirmable, queue.decodedThrough), flushed: confirmable, applied: confirmable)
        return confirmable
    }

    /// The slot's output plugin, and why: created when the slot does not exist yet (on a replication connection),
    /// with `plugin`'s choice (``OutputPlugin``; under `auto`, pgoutput when the server refuses starling_pgoutput),
    /// else the one it was created with. `created`: the new slot's consistent point.
    struct Slot {
        var created: LSN?
        var plugin: String
        var reason: String
    }

    func ensureSlot(name: String, plugin: OutputPlugin, connection: PostgresConnection) throws -> Slot {
        if let existing = try connection.replicationSlot(named: name) {
            let used = existing.plugin ?? OutputPlugin.pgoutput.rawValue
            if plugin != .auto && used != plugin.rawValue {
                logger.warning(
                    "the replication slot keeps the plugin it was created with, not output_plugin's: uninstall and bootstrap the region again to change it",
                    metadata: ["agent.slot": "\(name)", "agent.plugin": "\(used)", "agent.wanted": "\(plugin.rawValue)"])
            }
            return Slot(created: nil, plugin: used, reason: "slot \(name) decodes with \(used) (a slot keeps its plugin)")
        }
        let replication = try PostgresReplicationConnection.connect(
            url: url, applicationName: "starling-agent-\(region)-wal", parameters: [("options", Self.sessionOptions)])
        defer { replication.close() }
        var reason = "output_plugin: \(plugin.rawValue)"
        var used = plugin == .pgoutput ? OutputPlugin.pgoutput : .starlingPgoutput
        let point: LSN
        do throws(PostgresError) {
            point = try replication.createLogicalSlot(name: name, plugin: used.rawValue)
        } catch where plugin == .auto {
            // Not installed, or not listed in output_plugin_libraries (PostgreSQL 15.19 and later): pgoutput then.
            reason = "output_plugin: auto, starling_pgoutput unavailable (\(error.message)): " + Self.pluginFix
            used = .pgoutput
            point = try replication.createLogicalSlot(name: name, plugin: used.rawValue)
        } catch {
            guard plugin == .starlingPgoutput else { throw error }
            throw AgentError(
                code: .capture, message: "output_plugin: starling_pgoutput, but the server refuses it: \(error.message); "
                    + Self.pluginFix, key: "output_plugin")
        }
        logger.info(
            "replication slot created",
            metadata: ["agent.slot": "\(name)", "agent.at": "\(point)", "agent.plugin": "\(used.rawValue)"])
        return Slot(created: point, plugin: used.rawValue, reason: reason)
    }

    /// How a database gets starling_pgoutput (README "The decoding plugin").
    static let pluginFix =
        "install it in the server (ops/decoder/install) and list it in output_plugin_libraries "
        + "(PostgreSQL 15.19 and later), or set output_plugin: pgoutput"
}
