import StarlingCore
import StarlingHTTP2

/// The log-history check of region requests (README "Restoring the hub's store"): pulls and pushes name the
/// newest seq the region knows (`known`) and the term it saw it under (`term`); a hub whose store no longer
/// holds that seq under that term (restored to an earlier point) refuses them. Without the check a restored
/// store would hand out again the seqs it lost, for other changes, and a region past them would skip those
/// changes for good.
extension HubAPI {
    /// 409 `log_diverged` when `known` (`> 0`) is held by another term than `term` in this hub's log (or by none:
    /// beyond its head after a restore, a term opened since holds it). No check when the request names neither
    /// (an agent that has not yet seen a term).
    func checkLogHistory(_ query: [String: String]) throws(HTTPError) {
        guard let term = query["term"] else { return }
        let known = try Self.integer(query["known"], name: "known", default: 0, range: 0...Int64.max)
        let terms = sequencer.terms.withLock { $0 }
        guard known > 0, !terms.isEmpty else { return }
        let holding = terms.term(holding: known)
        guard holding?.id != term else { return }
        throw HTTPError(
            409, code: "log_diverged",
            "this region knows the log up to seq \(known) in term \(term), but the hub's log holds that seq "
                + (holding.map { "in term \($0.id)" } ?? "in no term")
                + ": the hub's store was restored to an earlier point; the agent rewinds to where the histories part "
                + "and re-asserts what the hub lost (GET /v1/config has the hub's log_terms)")
    }

    /// The term holding `seq`, for a pull page's `next` (nil before the first term, seq 0).
    func term(holding seq: Int64) -> LogTerm? {
        sequencer.terms.withLock { $0.term(holding: seq) }
    }

    /// The term this hub opened when it took over: the one holding every seq it hands out.
    var currentTerm: LogTerm? {
        sequencer.terms.withLock { $0.newest }
    }

    /// Appends `,"term":{…}` (the current term) to a push answer being written, before its closing brace.
    func appendCurrentTerm(to output: inout [UInt8]) {
        guard let term = currentTerm else { return }
        output.append(contentsOf: #","term":"#.utf8)
        term.write(to: &output)
    }
}
