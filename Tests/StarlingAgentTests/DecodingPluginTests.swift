@testable import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// The starling_pgoutput decoding plugin (ops/decoder/starling_pgoutput.c, installed by ops/test in its cluster
/// and listed in its `output_plugin_libraries`): pgoutput's stream, less the rows of an origin transaction that
/// listed its keys (``WrittenKeys``). Read through the SQL interface of a slot, decoded with the agent's own
/// pgoutput decoder, beside a pgoutput slot over the same WAL.
@Suite("Decoding plugin: starling_pgoutput")
struct DecodingPluginTests {
    /// What one decoded transaction held: its origin, its messages' prefixes and the ids of the rows inserted.
    struct Decoded: Equatable {
        var origin: String?
        var prefixes: [String] = []
        var ids: [String] = []
    }

    static func decoded(slot: String, connection: PostgresConnection) throws -> [Decoded] {
        var transactions: [Decoded] = []
        for row in try connection.query(
            """
            SELECT data FROM pg_logical_slot_get_binary_changes($1, NULL, NULL, 'proto_version', '1',
                'publication_names', 'plugin_test', 'messages', 'true')
            """, [.text(slot)])
        {
            switch try PgOutputDecoder.decode(try row.bytes("data")) {
            case .begin: transactions.append(Decoded())
            case .origin(let origin): transactions[transactions.count - 1].origin = origin.name
            case .message(let message): transactions[transactions.count - 1].prefixes.append(message.prefix)
            case .insert(let insert):
                guard case .text(let id) = insert.newTuple[0] else { throw TestFailure("id not text") }
                transactions[transactions.count - 1].ids.append(id)
            default: break
            }
        }
        return transactions
    }

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    @Test("the rows of an origin transaction that lists its keys stay out of the stream; nothing else does")
    func rowsOfListedTransactionsAreLeftOut() async throws {
        try await TestDatabase.with { database in
            let connection = try database.connect()
            defer { connection.close() }
            try connection.executeScript(
                """
                CREATE TABLE items (id bigint PRIMARY KEY, note text);
                CREATE PUBLICATION plugin_test FOR TABLE items;
                """)
            let slots = ["\(database.name)_starling", "\(database.name)_pgoutput"]
            try connection.query(
                "SELECT pg_create_logical_replication_slot($1, 'starling_pgoutput')", [.text(slots[0])])
            try connection.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [.text(slots[1])])
            defer {
                for slot in slots { _ = try? connection.query("SELECT pg_drop_replication_slot($1)", [.text(slot)]) }
            }
            // Named so that the database's drop drops it too (TestDatabase).
            let originName = "starling/\(database.name)/test"
            try connection.query("SELECT pg_replication_origin_create($1)", [.text(originName)])
            func transaction(origin: Bool, lists: Bool, id: Int) throws {
                try connection.execute("BEGIN")
                if origin { try connection.query("SELECT pg_replication_origin_session_setup($1)", [.text(originName)]) }
                if lists {
                    try connection.query(
                        "SELECT pg_logical_emit_message(true, $1, $2)",
                        [.text(WrittenKeys.prefix), .text(WrittenKeys.content([TableKey(table: "public.items", key: ["id": .number("\(id)")])]))])
                }
                try connection.query("INSERT INTO items VALUES ($1, 'row')", [.int(id)])
                try connection.execute("COMMIT")
                if origin { try connection.query("SELECT pg_replication_origin_session_reset()") }
            }
            try transaction(origin: false, lists: false, id: 1)  // the application's
            try transaction(origin: true, lists: true, id: 2)  // the agent's apply, listing its keys
            try transaction(origin: true, lists: false, id: 3)  // an agent transaction that lists nothing
            try transaction(origin: false, lists: true, id: 4)  // an application posing as the agent

            let filtered = try Self.decoded(slot: slots[0], connection: connection)
            let full = try Self.decoded(slot: slots[1], connection: connection)
            #expect(full.map(\.ids) == [["1"], ["2"], ["3"], ["4"]])
            #expect(filtered.map(\.ids) == [["1"], [], ["3"], ["4"]])
            // The listing transaction itself still comes, with its origin and its message: the agent's decoder
            // reads its keys there.
            #expect(filtered[1] == Decoded(origin: originName, prefixes: [WrittenKeys.prefix], ids: []))
            #expect(filtered.map(\.origin) == full.map(\.origin))
            #expect(filtered.map(\.prefixes) == full.map(\.prefixes))
        }
    }
}
