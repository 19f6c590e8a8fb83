/**
 * Order links kept in localStorage, so a buyer can open an order again from the live
 * page or the order page. A link contains the order's read token.
 */

const STORAGE_KEY = 'vitrine.orders';
const MAX_SAVED_ORDERS = 50;

/** Returns the order page link `/orders/{code}#token={token}`. */
export function orderLink(code, readToken) {
  return `/orders/${encodeURIComponent(code)}#token=${encodeURIComponent(readToken)}`;
}

/** Returns the saved orders, newest first, as `{code, read_token, live_slug, total_cents, currency, created_at}`. */
export function loadSavedOrders() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '[]');
    return Array.isArray(saved) ? saved.filter((entry) => entry?.code && entry?.read_token) : [];
  } catch {
    return [];
  }
}

/** Saves `order` with its read token in front of the list, replacing an older entry with the same code. */
export function saveOrder(order, readToken) {
  const entry = {
    code: order.code,
    read_token: readToken,
    live_slug: order.live_slug,
    total_cents: order.total_cents,
    currency: order.currency,
    created_at: order.created_at,
  };
  const others = loadSavedOrders().filter((saved) => saved.code !== order.code);
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify([entry, ...others].slice(0, MAX_SAVED_ORDERS)));
  } catch (error) {
    // Private browsing or a full quota: the order page link still works this time.
    console.warn('Could not save the order link in localStorage', error);
  }
}

export function findSavedOrder(code) {
  return loadSavedOrders().find((saved) => saved.code === code) ?? null;
}
