-- Order desk, live control and catalog extras.

ALTER TABLE lives
    ADD COLUMN starts_at timestamptz,
    ADD COLUMN started_at timestamptz,
    ADD COLUMN ended_at timestamptz;

ALTER TABLE products
    ADD COLUMN images text[] NOT NULL DEFAULT '{}',
    -- Managers are alerted when a sale leaves the stock at or below this.
    ADD COLUMN low_stock_threshold integer NOT NULL DEFAULT 0
        CHECK (low_stock_threshold >= 0),
    -- A flash offer: this unit price applies until flash_ends_at.
    ADD COLUMN flash_price_cents bigint CHECK (flash_price_cents >= 0),
    ADD COLUMN flash_ends_at timestamptz,
    ADD CONSTRAINT products_flash_complete
        CHECK ((flash_price_cents IS NULL) = (flash_ends_at IS NULL));

CREATE TABLE banners (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    live_id bigint NOT NULL REFERENCES lives (id) ON DELETE CASCADE,
    text text NOT NULL,
    image_url text NOT NULL DEFAULT '',
    link_url text NOT NULL DEFAULT '',
    visible boolean NOT NULL DEFAULT false,
    -- When set, the banner shows from show_at and hides at hide_at on its own.
    show_at timestamptz,
    hide_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (hide_at IS NULL OR show_at IS NULL OR hide_at > show_at)
);
CREATE INDEX banners_live_idx ON banners (live_id);

ALTER TABLE orders
    ADD COLUMN assigned_manager_id bigint REFERENCES managers (id) ON DELETE SET NULL;

-- Every status change and assignment of an order, with who made it and when.
CREATE TABLE order_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('status', 'assignment')),
    from_status text,
    to_status text,
    manager_id bigint REFERENCES managers (id) ON DELETE SET NULL,
    assigned_manager_id bigint REFERENCES managers (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_events_order_idx ON order_events (order_id, id);

-- The desk lists a live's orders newest first, with or without a status filter.
CREATE INDEX orders_live_id_idx ON orders (live_id, id DESC);
-- Search by tax id and company name within a live.
CREATE INDEX orders_live_tax_id_idx ON orders (live_id, tax_id);
CREATE INDEX orders_live_company_idx ON orders (live_id, lower(company_name) text_pattern_ops);
