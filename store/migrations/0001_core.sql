-- Managers, lives, catalog, carts and orders.

CREATE TABLE managers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username text NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 64),
    password_hash text NOT NULL,
    role text NOT NULL CHECK (role IN ('admin', 'host')),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per refresh token. Tokens issued from one login share a family, so reuse
-- of a rotated token can revoke all of them.
CREATE TABLE refresh_tokens (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    manager_id bigint NOT NULL REFERENCES managers (id) ON DELETE CASCADE,
    family uuid NOT NULL,
    token_digest bytea NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family);

CREATE TABLE lives (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    title text NOT NULL,
    status text NOT NULL DEFAULT 'scheduled'
        CHECK (status IN ('scheduled', 'live', 'ended')),
    video_url text NOT NULL DEFAULT '',
    currency char(3) NOT NULL DEFAULT 'BRL',
    pinned_product_ids bigint[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    live_id bigint NOT NULL REFERENCES lives (id) ON DELETE CASCADE,
    sku text NOT NULL,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    image_url text NOT NULL DEFAULT '',
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    -- [{"min_quantity": 12, "price_cents": 2690}, ...] sorted by min_quantity.
    tiers jsonb NOT NULL DEFAULT '[]',
    min_quantity integer NOT NULL DEFAULT 1 CHECK (min_quantity >= 1),
    step integer NOT NULL DEFAULT 1 CHECK (step >= 1),
    max_quantity integer CHECK (max_quantity IS NULL OR max_quantity >= min_quantity),
    stock integer NOT NULL DEFAULT 0 CHECK (stock >= 0),
    visible boolean NOT NULL DEFAULT true,
    position integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (live_id, sku)
);
-- The storefront lists a live's visible products by position.
CREATE INDEX products_live_position_idx ON products (live_id, position, id);

CREATE TABLE carts (
    id uuid PRIMARY KEY,
    live_id bigint NOT NULL REFERENCES lives (id) ON DELETE CASCADE,
    token_digest bytea NOT NULL,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'checked_out')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cart_items (
    cart_id uuid NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    quantity integer NOT NULL CHECK (quantity > 0),
    -- The unit price the buyer last saw for this line; checkout compares it with the
    -- current one.
    seen_unit_price_cents bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cart_id, product_id)
);
CREATE INDEX cart_items_product_idx ON cart_items (product_id);

CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code text NOT NULL UNIQUE,
    live_id bigint NOT NULL REFERENCES lives (id),
    cart_id uuid NOT NULL UNIQUE REFERENCES carts (id),
    read_token_digest bytea NOT NULL,
    idempotency_key text NOT NULL,
    request_digest bytea NOT NULL,
    status text NOT NULL DEFAULT 'new'
        CHECK (status IN ('new', 'in_service', 'done', 'cancelled')),
    currency char(3) NOT NULL,
    total_cents bigint NOT NULL CHECK (total_cents >= 0),
    item_count integer NOT NULL CHECK (item_count > 0),
    company_name text NOT NULL,
    tax_id text NOT NULL,
    contact_name text NOT NULL,
    phone text NOT NULL,
    email text NOT NULL,
    notes text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- The order desk lists a live's orders by status, newest first.
CREATE INDEX orders_live_status_idx ON orders (live_id, status, id DESC);

-- A snapshot of each line at checkout: later product edits never change it.
CREATE TABLE order_items (
    order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id bigint REFERENCES products (id) ON DELETE SET NULL,
    sku text NOT NULL,
    name text NOT NULL,
    unit_price_cents bigint NOT NULL CHECK (unit_price_cents >= 0),
    quantity integer NOT NULL CHECK (quantity > 0),
    line_total_cents bigint NOT NULL CHECK (line_total_cents >= 0),
    line_number integer NOT NULL,
    PRIMARY KEY (order_id, line_number)
);
CREATE INDEX order_items_product_idx ON order_items (product_id);
