import StarlingPostgres
import Synchronization

/// The demo's application: in every region, a stream of shop writes on a small hot set of keys, so that
/// regions collide on the same rows under every policy. Seeded: the same seed gives the same sequence of
/// operations per region (timing still varies).
final class DemoWorkload: Sendable {
    let region: String
    let regionIndex: Int
    private let worker: PostgresWorker
    private let state: Mutex<(random: SplitMix, writes: Int, errors: Int, lastError: String?)>

    init(region: String, regionIndex: Int, url: String, seed: UInt64) {
        self.region = region
        self.regionIndex = regionIndex
        worker = PostgresWorker(url: url, applicationName: "starling-demo-app")
        state = Mutex((SplitMix(seed: seed &+ UInt64(regionIndex) &* 0x9E37_79B9_7F4A_7C15), 0, 0, nil))
    }

    var writes: Int { state.withLock { $0.writes } }
    var errors: Int { state.withLock { $0.errors } }

    /// One write transaction of a randomly chosen kind.
    func writeOnce() async {
        let (sql, params) = state.withLock { nextStatement(&$0.random) }
        await write { connection in _ = try connection.execute(sql, params, name: "demo.write") }
    }

    /// The collision round (``DemoSchema/collision(region:)``): one transaction, counted as one write.
    func collide() async {
        let script = "BEGIN; " + DemoSchema.collision(region: region) + " COMMIT"
        await write { connection in _ = try connection.executeScript(script, name: "demo.collision") }
    }

    /// Runs one write transaction, counting it or its error.
    private func write(_ body: @escaping @Sendable (PostgresConnection) throws -> Void) async {
        do {
            try await worker.withConnection(body)
            state.withLock { $0.writes += 1 }
        } catch {
            state.withLock {
                $0.errors += 1
                $0.lastError = "\(error)"
            }
        }
    }

    /// Runs `body` on this region's database connection.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await worker.withConnection(body)
    }

    func shutdown() async { await worker.shutdown() }

    private func nextStatement(_ random: inout SplitMix) -> (String, [PostgresValue]) {
        let roll = random.next(100)
        let number = String(1 + random.next(DemoSchema.hotProducts))
        let sku = "SKU-" + String(repeating: "0", count: max(0, 4 - number.count)) + number
        switch roll {
        case 0..<30:
            return ("UPDATE public.products SET stock = stock + $1, price = $2, updated_at = clock_timestamp() WHERE sku = $3",
                    [.int64(Int64(random.next(21)) - 10), .text("\(10 + random.next(90)).\(random.next(100))"), .text(sku)])
        case 30..<35:
            return ("DELETE FROM public.products WHERE sku = $1", [.text(sku)])
        case 35..<42:
            return ("""
                INSERT INTO public.products (sku, title, price, stock, tags) VALUES ($1, $2, $3, 50, ARRAY['restocked', $4])
                ON CONFLICT (sku) DO UPDATE SET stock = public.products.stock + 50, updated_at = clock_timestamp()
                """, [.text(sku), .text("Product \(sku)"), .text("19.99"), .text(region)])
        case 42..<55:
            let customer = Int64(1 + random.next(DemoSchema.hotCustomers))
            if random.next(2) == 0 {
                return ("UPDATE public.customers SET tier = $1, updated_at = clock_timestamp() WHERE id = $2",
                        [.text(["standard", "silver", "gold", "platinum"][random.next(4)]), .int64(customer)])
            }
            return ("UPDATE public.customers SET email = $1, preferences = jsonb_build_object('region', $2::text), "
                        + "updated_at = clock_timestamp() WHERE id = $3",
                    [.text("c\(customer)+\(region)@example.com"), .text(region), .int64(customer)])
        case 55..<72:
            return ("INSERT INTO public.orders (id, customer_id, sku, qty, status, placed_in) "
                        + "VALUES (gen_random_uuid(), $1, $2, $3, 'placed', $4)",
                    [.int64(Int64(1 + random.next(100))), .text(sku), .int64(Int64(1 + random.next(5))), .text(region)])
        case 72..<82:
            return ("UPDATE public.orders SET status = $1, updated_at = clock_timestamp() WHERE id IN "
                        + "(SELECT id FROM public.orders ORDER BY customer_id, id LIMIT 1 OFFSET $2)",
                    [.text(["paid", "packed", "shipped", "cancelled"][random.next(4)]), .int64(Int64(random.next(20)))])
        case 82..<90:
            return ("INSERT INTO public.price_overrides (region, sku, price, reason) VALUES ($1, $2, $3, $4) "
                        + "ON CONFLICT (region, sku) DO UPDATE SET price = EXCLUDED.price, reason = EXCLUDED.reason",
                    [.text(["eu", "us", "ap"][random.next(3)]), .text(sku), .text("\(5 + random.next(50)).00"),
                     .text("set in \(region)")])
        default:
            return ("INSERT INTO public.ledger (id, account, amount, memo, booked_in) VALUES ($1, $2, $3, $4, $5) "
                        + "ON CONFLICT (id) DO NOTHING",
                    [.int64(Int64(1 + random.next(DemoSchema.ledgerIDs))), .text("acct-\(random.next(10))"),
                     .text("\(random.next(1000)).\(random.next(100))"), .text("booking"), .text(region)])
        }
    }
}

/// SplitMix64: a tiny seeded generator (the demo prints its seed so a run can be repeated).
struct SplitMix: Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func nextRaw() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in 0..<bound.
    mutating func next(_ bound: Int) -> Int { Int(nextRaw() % UInt64(max(bound, 1))) }
}

