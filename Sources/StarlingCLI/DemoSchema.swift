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
        """

    /// Hot key ranges the workload picks from: small on purpose, so regions collide.
    static let hotProducts = 40
    static let hotCustomers = 30
    static let ledgerIDs = 400
}
