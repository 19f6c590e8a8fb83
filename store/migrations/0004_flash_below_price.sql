-- A flash offer lowers the price: an offer at or above the regular price would show
-- a countdown to nothing.
ALTER TABLE products ADD CONSTRAINT products_flash_below_price
    CHECK (flash_price_cents IS NULL OR flash_price_cents < price_cents);
