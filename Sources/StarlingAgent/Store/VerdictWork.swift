import StarlingCore

/// What handling the hub's verdicts does, sorted change by change before any statement runs (``AgentStore/
/// handleVerdicts(_:for:wal:connection:)`` for a batch, ``AgentStore/handleSpilledVerdicts(_:for:overwritten:
/// stillPending:journal:connection:)`` a slice at a time): the versions handled keys hold now, the images to
/// write, the accepted versions for version rows. Pure.
struct VerdictWork {
    let region: String
    /// WAL capture: the handled keys' versions go into the transaction's marker.
    let isWAL: Bool
    /// Version rows are written (trigger capture, or WAL capture still switching from it).
    let versionRows: Bool

    var summary = VerdictSummary()
    /// Accepted versions for the version rows (`versionRows`).
    var accepted = JSONBatchWriter()
    /// Every handled key that is not superseded, with the version it holds now (releases deferred entries).
    var decided = JSONBatchWriter()
    /// Winners of rejections (version rows: displaced while their images are written).
    var rejectedWinners: [(String, JSONObject, Int64)] = []
    /// Images to write, and the verdict each came from (its dead letter when it cannot be written).
    var images: [AgentStore.Image] = []
    var letters: [JSONValue] = []
    /// WAL capture: the version each handled key holds now.
    var markerVersions: [TableKey: Int64] = [:]

    init(region: String, isWAL: Bool, versionRows: Bool) {
        self.region = region
        self.isWAL = isWAL
        self.versionRows = versionRows
    }

    /// Sorts one change's verdict. `isSuperseded`: a later local change of the key is in the same batch or still
    /// pending (its own verdict decides the key; images are skipped). `isOverwritten`: an agent transaction wrote
    /// the key after this change (WAL capture), so an accepted change's own image goes back.
    mutating func add(_ verdict: Verdict, for change: Change, key: TableKey, isSuperseded: Bool, isOverwritten: Bool) {
        if !isSuperseded {
            decided.append(table: change.table, key: change.key, seq: verdict.version)
            if isWAL { markerVersions[key] = verdict.version }
        }
        switch verdict.outcome {
        case .accepted(let seq):
            summary.accepted += 1
            if isWAL, isOverwritten, !isSuperseded {
                // Its version comes with the image, which the version row would otherwise refuse.
                images.append(AgentStore.Image(table: change.table, key: change.key, row: change.after, seq: seq, origin: region))
                letters.append(verdict.json)
                summary.restored += 1
                return
            }
            if versionRows { accepted.append(table: change.table, key: change.key, seq: seq) }
        case .merged(let seq, let row):
            summary.merged += 1
            if isSuperseded {
                summary.imagesSkipped += 1
                return
            }
            images.append(AgentStore.Image(table: change.table, key: change.key, row: row, seq: seq, origin: region))
            letters.append(verdict.json)
        case .rejected(_, let winner):
            summary.rejected += 1
            if isSuperseded {
                summary.imagesSkipped += 1
                return
            }
            images.append(
                AgentStore.Image(table: change.table, key: change.key, row: winner.row, seq: winner.seq, origin: winner.origin))
            rejectedWinners.append((change.table, change.key, winner.seq))
            letters.append(verdict.json)
        }
    }
}
