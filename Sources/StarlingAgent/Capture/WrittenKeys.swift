public import StarlingCore
import Synchronization

/// The logical decoding output plugin a new replication slot is created with (`output_plugin:` in agent.yaml;
/// README "The decoding plugin"). A slot keeps the plugin it was created with.
public enum OutputPlugin: String, Sendable, Hashable, CaseIterable, Decodable {
    /// `starling_pgoutput` when the database may load it, else `pgoutput` (the agent logs and reports why).
    case auto
    /// PostgreSQL's own: in every PostgreSQL and every managed service. The agent's applies are decoded and sent
    /// to it in full, only to be dropped.
    case pgoutput
    /// pgoutput without the rows of the agent's own applies (ops/decoder/starling_pgoutput.c): needs the library
    /// installed in the server and, from PostgreSQL 15.19 on, listed in `output_plugin_libraries`.
    case starlingPgoutput = "starling_pgoutput"
}

/// The message with which an agent transaction lists the keys it writes (a transactional logical message with
/// prefix ``prefix``, before its rows), so that a slot decoding with `starling_pgoutput` leaves the transaction's
/// rows out of the stream: at R regions, R − 1 rows in R of a region's WAL are the agent's applies, which its WAL
/// sender otherwise decodes, formats column by column and sends for nothing (a sixth of the machine's CPU in W1
/// at R = 8, 2026-12-07). The decoder needs an own transaction's keys only while a local change waits for its
/// verdict (``CaptureLedger/own(marker:writtenKeys:)``: a change the transaction overwrote); it reads them from here
/// then, and never otherwise.
///
/// Only a transaction that writes nothing but the listed keys sends one: an apply whose tables write no other rows
/// (no trigger of the application's, no cascading foreign key), where the marker makes its promise
/// (``CaptureLedger/Marker/deferredThrough``). Every other agent transaction is decoded in full, as by pgoutput.
public enum WrittenKeys {
    /// The message's prefix (the plugin's `STARLING_WRITTEN_PREFIX`).
    public static let prefix = "starling.written"

    /// The content for `keys`: a JSON array of `[table, key]` items (the ledger's item form). The keys the
    /// transaction's marker gives versions go as ``markerVersionsContent`` instead.
    static func content(_ keys: some Sequence<TableKey>) -> String {
        var out: [UInt8] = [UInt8(ascii: "[")]
        var first = true
        for key in keys {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            CaptureLedger.writeItem(key, [], to: &out)
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    /// The content saying "the keys of the marker's versions": a parallel apply's part gives every key it writes a
    /// version (``AgentStore/partMarker(_:wal:)``), so its message repeats none of them.
    static let markerVersionsContent = ""

    /// The keys a message's `content` lists; for the empty content, those of `marker`'s versions. Throws on a
    /// malformed list.
    static func keys(_ content: [UInt8], marker: CaptureLedger.Marker?) throws(AgentError) -> [TableKey] {
        if content.isEmpty { return marker.map { Array($0.versions.keys) } ?? [] }
        func malformed(_ detail: String) -> AgentError {
            AgentError(code: .capture, message: "a Starling written-keys message in the WAL is malformed: \(detail)")
        }
        let json: JSONValue
        do {
            json = try JSONValue(parsing: content)
        } catch {
            throw malformed("\(error)")
        }
        guard let items = json.arrayValue else { throw malformed("not an array") }
        var keys: [TableKey] = []
        keys.reserveCapacity(items.count)
        for item in items {
            guard let table = item[0]?.stringValue, let key = item[1]?.objectValue else {
                throw malformed("an item is not [table, key]")
            }
            keys.append(TableKey(table: table, key: key))
        }
        return keys
    }
}

/// Whether the agent's transactions send ``WrittenKeys`` messages: set once the slot's plugin is known (only a slot
/// decoding with `starling_pgoutput` needs them; to pgoutput they would be WAL written for nothing). Shared by the
/// copies of an ``AgentStore``.
public final class WrittenKeysSetting: Sendable {
    private let sends = Atomic<Bool>(false)

    public init() {}

    public var isOn: Bool { sends.load(ordering: .relaxed) }

    func set(_ value: Bool) { sends.store(value, ordering: .relaxed) }
}
