-- A version that grows with every change of a product row. Events are published
-- after their commit, so two of them can reach clients in the other order; the
-- version lets a client keep the newer state.

ALTER TABLE products ADD COLUMN version bigint NOT NULL DEFAULT 1;

CREATE FUNCTION products_bump_version() RETURNS trigger AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER products_bump_version
    BEFORE UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION products_bump_version();
