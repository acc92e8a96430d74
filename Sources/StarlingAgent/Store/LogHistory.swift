public import StarlingCore
public import StarlingPostgres
import Synchronization

/// What this region knows of the hub's log history (README "Restoring the hub's store"): the newest seq it
/// learned of (`known`: its pull cursor, or a verdict's seq on its own change) and the terms it crossed
/// (``LogTerms``). Pulls and pushes name `known` and the term holding it; a hub whose store was restored to an
/// earlier point refuses them with `log_diverged`, and the agent rewinds (Agent+Rewind.swift).
///
/// Shared by the pull and push tasks and the hub link (which stamps requests with it and records the terms
/// answers carry); stored in `starling.state` inside the transactions that apply pages and handle verdicts
/// (``save(connection:)`` writes the value as of then, so the later of two such transactions never stores less).
public final class LogHistory: Sendable {
    public struct Position: Sendable, Hashable {
        public var known: Int64
        public var terms: LogTerms

        public init(known: Int64 = 0, terms: LogTerms = LogTerms()) {
            self.known = known
            self.terms = terms
        }

        /// The term holding `known` as this region saw it; nil before the first term.
        public var knownTerm: LogTerm? { known > 0 ? terms.term(holding: known) : nil }
    }

    /// The position with what is derived from its terms, made again only when they change (every apply and every
    /// pull used them: serializing the terms and percent-encoding a term's id each time was 1.5 % of an agent's CPU
    /// in W2 R=8, 2026-12-06).
    private struct Stored: Sendable {
        var position: Position
        /// `position.terms` as canonical JSON text (what `starling.state.log_terms` stores).
        var termsText: String
        /// The percent-encoded id of the term holding `position.known`, nil before the first term.
        var encodedTerm: String?

        init(_ position: Position) {
            self.position = position
            termsText = position.terms.json.canonicalText
            encodedTerm = position.knownTerm.map { PercentEncoding.encode($0.id) }
        }
    }

    private let stored: Mutex<Stored>

    public init(_ position: Position = Position()) {
        self.stored = Mutex(Stored(position))
    }

    public var current: Position { stored.withLock { $0.position } }

    /// The current position and its terms as canonical JSON text, read together.
    public var currentWithTermsText: (position: Position, termsText: String) {
        stored.withLock { ($0.position, $0.termsText) }
    }

    /// Records a seq the hub told this region of, and the term holding it (when the answer says).
    public func learned(seq: Int64, term: LogTerm?) {
        stored.withLock { stored in
            var position = stored.position
            position.known = max(position.known, seq)
            if let term { position.terms.crossed(term) }
            guard position != stored.position else { return }
            if position.terms == stored.position.terms && position.knownTerm == stored.position.knownTerm {
                stored.position = position
            } else {
                stored = Stored(position)
            }
        }
    }

    /// Replaces the position (after a rewind, or when loaded at start).
    public func reset(to new: Position) {
        stored.withLock { $0 = Stored(new) }
    }

    /// `known=N&term=ID` for a pull's or push's query, nil before the first term.
    public var queryItems: String? {
        let (known, term) = stored.withLock { ($0.position.known, $0.encodedTerm) }
        guard let term else { return nil }
        return "known=\(known)&term=\(term)"
    }

    /// Stores the current position in `starling.state` (inside the caller's transaction).
    public func save(connection: PostgresConnection) throws {
        let (position, termsText) = currentWithTermsText
        try connection.execute(
            "UPDATE starling.state SET known_seq = greatest(known_seq, $1), log_terms = $2::jsonb",
            [.int64(position.known), .text(termsText)], name: "agent.logHistory.save")
    }

    /// Stores `position` as it is (a bootstrap's: `known` may go down, the terms are dropped).
    public static func replace(with position: Position, connection: PostgresConnection) throws {
        try connection.execute(
            "UPDATE starling.state SET known_seq = $1, log_terms = $2::jsonb",
            [.int64(position.known), .text(position.terms.json.canonicalText)], name: "agent.logHistory.reset")
    }

    /// The stored position: `known` is at least the cursor and every seq parallel parts applied above it
    /// (AgentStore+Parallel.swift).
    public static func load(connection: PostgresConnection) throws -> Position {
        let row = try connection.query(
            """
            SELECT greatest(known_seq, cursor,
                            (SELECT max(p.max_seq) FROM starling.apply_parts p WHERE p.after = s.cursor)) AS known,
                   log_terms::text AS terms
            FROM starling.state s
            """, name: "agent.logHistory.load")[0]
        return Position(known: try row.int64("known"), terms: try LogTerms(json: JSONValue(parsing: try row.string("terms"))))
    }
}
