/// The demo's realistic schema: a small shop, one table per conflict policy.
enum DemoSchema {
    /// (table, policy, manual provisional) as the hub is configured.
    static let tables: [(name: String, policy: String, provisional: String?)] = [
        ("public.products", "lww", nil),
        ("public.customers", "merge", nil),
        ("public.orders", "priority", nil),
        ("public.price_overrides", "manual", "lww"),
        ("public.ledger", "reject", nil),
    ]

    /// The DDL every region runs (same columns everywhere, a primary key on each table).
    static let ddl = """
        CREATE TABLE public.products (
            sku text PRIMARY KEY, title text NOT NULL, price numeric(12,2) NOT NULL, stock integer NOT NULL,
            tags text[] NOT NULL DEFAULT '{}', updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
        CREATE TABLE public.customers (
            id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, tier text NOT NULL,
            preferences jsonb NOT NULL DEFAULT '{}', updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
        CREATE TABLE public.orders (
            id uuid PRIMARY KEY, customer_id bigint NOT NULL, sku text NOT NULL, qty integer NOT NULL,
            status text NOT NULL, placed_in text NOT NULL, updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
        CREATE TABLE public.price_overrides (
            region text NOT NULL, sku text NOT NULL, price numeric(12,2) NOT NULL, reason text,
            PRIMARY KEY (region, sku));
        CREATE TABLE public.ledger (
            id bigint PRIMARY KEY, account text NOT NULL, amount numeric(14,2) NOT NULL, memo text,
            booked_in text NOT NULL);
        """

    /// Seed rows, written in the first region only and replicated to the others before the workload starts.
    static let seed = """
        INSERT INTO public.products (sku, title, price, stock, tags)
            SELECT 'SKU-' || lpad(i::text, 4, '0'), 'Product ' || i, (10 + i % 90) + 0.99, 100, ARRAY['demo']
            FROM generate_series(1, 200) AS i;
        INSERT INTO public.customers (id, name, email, tier)
            SELECT i, 'Customer ' || i, 'customer' || i || '@example.com', 'standard'
            FROM generate_series(1, 100) AS i;
        INSERT INTO public.orders (id, customer_id, sku, qty, status, placed_in)
            SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, i, 'SKU-' || lpad(i::text, 4, '0'), 1,
                   'placed', 'seed'
            FROM generate_series(1, 10) AS i;
        """

    /// One transaction every region runs at the same moment as the workload starts: the same row of every table,
    /// written everywhere before any region's write can arrive elsewhere, so each policy meets a conflict at once
    /// (on a fast link the random workload alone may meet none on some table in a short run).
    static func collision(region: String) -> String {
        let tag = region.replacingOccurrences(of: "'", with: "''")
        return """
            UPDATE public.products SET stock = stock + 1, title = 'Product 1 (\(tag))', updated_at = clock_timestamp()
                WHERE sku = 'SKU-0001';
            UPDATE public.customers SET tier = 'gold', email = 'customer1+\(tag)@example.com', updated_at = clock_timestamp()
                WHERE id = 1;
            UPDATE public.orders SET status = 'paid in \(tag)', updated_at = clock_timestamp()
                WHERE id = '00000000-0000-0000-0000-000000000001';
            INSERT INTO public.price_overrides (region, sku, price, reason) VALUES ('eu', 'SKU-0001', 9.99, 'set in \(tag)')
                ON CONFLICT (region, sku) DO UPDATE SET reason = EXCLUDED.reason;
            INSERT INTO public.ledger (id, account, amount, memo, booked_in) VALUES (0, 'acct-0', 1.00, 'opening', '\(tag)')
                ON CONFLICT (id) DO NOTHING;
            """
    }

    /// Hot key ranges the workload picks from: small on purpose, so regions collide.
    static let hotProducts = 40
    static let hotCustomers = 30
    static let ledgerIDs = 400
}
