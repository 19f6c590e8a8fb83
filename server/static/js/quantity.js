/**
 * Order quantity rules and volume pricing of a product, as docs/API.md defines them:
 * a quantity is at least `min_quantity`, a multiple of `step`, and at most
 * `max_quantity` when that is not null. The server enforces the same rules.
 */

function stepOf(product) {
  return Math.max(1, product.step || 1);
}

/** Returns the smallest quantity the server accepts for `product`. */
export function minValidQuantity(product) {
  const step = stepOf(product);
  return Math.ceil(Math.max(1, product.min_quantity || 1) / step) * step;
}

/**
 * Returns the largest valid quantity within `max_quantity` and the current stock, which
 * is below minValidQuantity() when the product cannot be ordered.
 */
export function maxValidQuantity(product) {
  const step = stepOf(product);
  const limit = Math.min(product.max_quantity ?? Infinity, product.stock ?? Infinity);
  return limit === Infinity ? Infinity : Math.floor(limit / step) * step;
}

/** Returns `value` rounded to the nearest multiple of `step` and clamped to the valid range. */
export function snapQuantity(product, value) {
  const step = stepOf(product);
  const low = minValidQuantity(product);
  const high = Math.max(low, maxValidQuantity(product));
  const rounded = Math.round((Number(value) || 0) / step) * step;
  return Math.min(high, Math.max(low, rounded));
}

/** Returns the step in units, or 1 for an unknown product. */
export function quantityStep(product) {
  return product ? stepOf(product) : 1;
}

/**
 * Returns the price rows of `product` as `{min_quantity, price_cents,
 * regular_price_cents}`, lowest quantity first: the price at the minimum quantity, then
 * each tier above it. `price_cents` applies `flashPriceCents` like unitPriceCents(), and
 * `regular_price_cents` is the price without it.
 */
export function priceRows(product, flashPriceCents = null) {
  const tiers = [...(product.tiers ?? [])].sort((a, b) => a.min_quantity - b.min_quantity);
  const minimum = minValidQuantity(product);
  const rows = [
    { min_quantity: minimum, price_cents: unitPriceCents(product, minimum) },
    ...tiers.filter((tier) => tier.min_quantity > minimum),
  ];
  return rows.map((row) => ({
    min_quantity: row.min_quantity,
    price_cents: capPrice(row.price_cents, flashPriceCents),
    regular_price_cents: row.price_cents,
  }));
}

/**
 * Returns the unit price in cents for `quantity`: the tier with the largest
 * `min_quantity` not above the quantity, or `price_cents` when no tier applies. A
 * running flash offer's price (`flashPriceCents`, null when none runs) caps that price,
 * as the server does.
 */
export function unitPriceCents(product, quantity, flashPriceCents = null) {
  let price = product.price_cents;
  let matched = -1;
  for (const tier of product.tiers ?? []) {
    if (tier.min_quantity <= quantity && tier.min_quantity > matched) {
      matched = tier.min_quantity;
      price = tier.price_cents;
    }
  }
  return capPrice(price, flashPriceCents);
}

function capPrice(price, flashPriceCents) {
  return typeof flashPriceCents === 'number' ? Math.min(price, flashPriceCents) : price;
}
