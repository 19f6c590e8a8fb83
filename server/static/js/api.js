/**
 * Fetch wrappers for the Vitrine buyer API (docs/API.md). Each function resolves with
 * the parsed JSON body and rejects with an ApiError.
 */

const API_ROOT = '/api/v1';

// A clock difference below this is left uncorrected, because the Date header has a
// resolution of one second and a smaller estimate is mostly rounding and network delay.
const CLOCK_SKEW_THRESHOLD_MS = 2000;
let serverClockOffsetMs = 0;

/**
 * Returns the server's current time in epoch milliseconds, estimated from the Date header
 * of the last API response, so that countdowns to server times stay right on a device
 * whose clock is off. Before any response it is the device's time.
 */
export function serverNow() {
  return Date.now() + serverClockOffsetMs;
}

function recordServerDate(response) {
  const serverDate = Date.parse(response.headers.get('Date') ?? '');
  if (Number.isNaN(serverDate)) {
    return;
  }
  // The header is truncated to the second, so the midpoint of that second is the estimate.
  const offset = serverDate + 500 - Date.now();
  serverClockOffsetMs = Math.abs(offset) < CLOCK_SKEW_THRESHOLD_MS ? 0 : offset;
}

/**
 * A failed API call. `code`, `message`, `field`, `lines`, `errors` (CSV line errors)
 * and `productIds` (the error's `product_ids`, e.g. of `product_unavailable`) come from
 * the server's `{"error": {...}}` body. `status` is the HTTP status, or 0 when the request never got
 * a response (then `code` is 'network_error').
 */
export class ApiError extends Error {
  constructor({
    status,
    code,
    message,
    field = null,
    lines = null,
    errors = null,
    productIds = null,
    retryAfterSeconds = null,
  }) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
    this.lines = lines;
    this.errors = errors;
    this.productIds = productIds;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** Whether sending the same request again may succeed: no response or a 5xx status. */
  get retryable() {
    return this.status === 0 || this.status >= 500;
  }
}

async function request(method, path, { body, headers = {} } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }

  let response;
  try {
    response = await fetch(API_ROOT + path, init);
  } catch (error) {
    throw new ApiError({
      status: 0,
      code: 'network_error',
      message: 'Could not reach the server. Check your connection and try again.',
    });
  }
  recordServerDate(response);

  if (response.status === 204) {
    return null;
  }
  const payload = await response.json().catch(() => null);
  if (response.ok) {
    return payload;
  }
  throw toApiError(response, payload);
}

/** Converts an error response and its decoded body into an ApiError. */
export function toApiError(response, payload) {
  const retryAfter = Number.parseInt(response.headers.get('Retry-After') ?? '', 10);
  const retryAfterSeconds = Number.isFinite(retryAfter) ? retryAfter : null;
  const detail = payload?.error;
  if (detail && typeof detail.code === 'string') {
    return new ApiError({
      status: response.status,
      code: detail.code,
      message: detail.message || `Request failed with HTTP ${response.status}.`,
      field: detail.field ?? null,
      lines: Array.isArray(detail.lines) ? detail.lines : null,
      errors: Array.isArray(detail.errors) ? detail.errors : null,
      productIds: Array.isArray(detail.product_ids) ? detail.product_ids : null,
      retryAfterSeconds,
    });
  }
  // A body without the error shape, e.g. an HTML page from a proxy in front of the server.
  const message =
    response.status === 503
      ? 'The server is temporarily unavailable. Try again in a moment.'
      : `Request failed with HTTP ${response.status}.`;
  return new ApiError({ status: response.status, code: 'http_error', message, retryAfterSeconds });
}

const segment = encodeURIComponent;

export function getLive(slug) {
  return request('GET', `/lives/${segment(slug)}`);
}

/** Creates a cart and returns `{session_id, session_token}`. Only this call returns the token. */
export function createCart(slug) {
  return request('POST', `/lives/${segment(slug)}/carts`);
}

export function getCart(cart) {
  return request('GET', `/carts/${segment(cart.session_id)}`, {
    headers: { 'X-Session-Token': cart.session_token },
  });
}

/** Sets a line's quantity and returns the cart. Quantity 0 removes the line. */
export function setCartItem(cart, productId, quantity) {
  return request('PUT', `/carts/${segment(cart.session_id)}/items/${segment(productId)}`, {
    headers: { 'X-Session-Token': cart.session_token },
    body: { quantity },
  });
}

export function removeCartItem(cart, productId) {
  return request('DELETE', `/carts/${segment(cart.session_id)}/items/${segment(productId)}`, {
    headers: { 'X-Session-Token': cart.session_token },
  });
}

/**
 * Places the order and returns `{order, read_token}`. When retrying after a network
 * error, send the same `idempotencyKey` with the same `buyer` body: the server then
 * returns the first order (200) instead of creating a second one.
 */
export function checkout(cart, buyer, idempotencyKey) {
  return request('POST', `/carts/${segment(cart.session_id)}/checkout`, {
    headers: { 'X-Session-Token': cart.session_token, 'Idempotency-Key': idempotencyKey },
    body: buyer,
  });
}

export function getOrder(code, readToken) {
  return request('GET', `/orders/${segment(code)}`, {
    headers: readToken ? { 'X-Read-Token': readToken } : {},
  });
}
