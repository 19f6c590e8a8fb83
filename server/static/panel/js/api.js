/**
 * Fetch wrapper for the manager API (docs/API.md). Adds the bearer token, refreshes it
 * once on a 401 `token_expired` and retries, and ends the session on any other 401.
 */

import {
  accessTokenExpiresSoon,
  endSession,
  getAccessToken,
  refreshTokens,
  storeTokens,
} from './session.js';
// The storefront's module holds the error shape both apps share.
import { ApiError, toApiError } from '/static/js/api.js';

export { ApiError, toApiError };

export const API_ROOT = '/api/v1/manager';

/** Encodes one path segment. */
export const segment = (value) => encodeURIComponent(String(value));

/** Builds a query string from `params`, skipping empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') {
      search.set(key, String(value));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/**
 * Sends a request to `API_ROOT + path` and resolves with the parsed JSON (null for
 * 204), or a Blob when `as` is 'blob'. `body` is sent as JSON unless `rawBody` is
 * given with its `contentType`.
 */
export async function apiRequest(method, path, { body, rawBody, contentType, as = 'json' } = {}) {
  if (accessTokenExpiresSoon()) {
    await refreshTokens().catch(() => {});
  }
  let response = await send(method, path, { body, rawBody, contentType });
  if (response.status === 401) {
    const payload = await response.clone().json().catch(() => null);
    if (payload?.error?.code === 'token_expired') {
      try {
        await refreshTokens();
      } catch (error) {
        throw toRefreshError(error);
      }
      response = await send(method, path, { body, rawBody, contentType });
    }
  }
  return readResponse(response, as);
}

function toRefreshError(error) {
  return new ApiError({
    status: error.status ?? 401,
    code: 'unauthorized',
    message: error.message || 'Your login has expired. Sign in again.',
  });
}

async function send(method, path, { body, rawBody, contentType }) {
  const headers = { Accept: 'application/json' };
  const token = getAccessToken();
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  const init = { method, headers };
  if (rawBody !== undefined) {
    headers['Content-Type'] = contentType;
    init.body = rawBody;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(API_ROOT + path, init);
  } catch {
    throw new ApiError({
      status: 0,
      code: 'network_error',
      message: 'Could not reach the server. Check the connection and try again.',
    });
  }
}

async function readResponse(response, as) {
  if (response.ok) {
    if (response.status === 204) {
      return null;
    }
    return as === 'blob' ? response.blob() : response.json().catch(() => null);
  }
  const payload = await response.json().catch(() => null);
  const error = toApiError(response, payload);
  if (response.status === 401) {
    // Revoked, invalid or still expired after a refresh: the login is over.
    endSession('expired');
  }
  throw error;
}

/** Signs in and stores the tokens. Rejects with an ApiError (429 carries `retryAfterSeconds`). */
export async function login(username, password) {
  let response;
  try {
    response = await fetch(`${API_ROOT}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username, password }),
    });
  } catch {
    throw new ApiError({ status: 0, code: 'network_error', message: 'Could not reach the server. Check the connection and try again.' });
  }
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    throw toApiError(response, payload);
  }
  storeTokens(payload);
  return payload.manager;
}

/** Revokes the login on the server (best effort) and clears it here. */
export async function logout() {
  try {
    await send('POST', '/logout', {});
  } catch (error) {
    console.warn('panel: logout request failed', error);
  }
  endSession('signed_out');
}

const live = (slug) => `/lives/${segment(slug)}`;

export const managerApi = {
  listLives: () => apiRequest('GET', '/lives'),
  createLive: (fields) => apiRequest('POST', '/lives', { body: fields }),
  getLive: (slug) => apiRequest('GET', live(slug)),
  updateLive: (slug, fields) => apiRequest('PATCH', live(slug), { body: fields }),

  createProduct: (slug, fields) => apiRequest('POST', `${live(slug)}/products`, { body: fields }),
  updateProduct: (slug, id, fields) =>
    apiRequest('PATCH', `${live(slug)}/products/${segment(id)}`, { body: fields }),
  deleteProduct: (slug, id) => apiRequest('DELETE', `${live(slug)}/products/${segment(id)}`),
  exportProducts: (slug) => apiRequest('GET', `${live(slug)}/products.csv`, { as: 'blob' }),
  importProducts: (slug, file) =>
    apiRequest('POST', `${live(slug)}/products.csv`, { rawBody: file, contentType: 'text/csv' }),

  createUpload: (file) =>
    apiRequest('POST', '/uploads', {
      body: { filename: file.name, content_type: file.type, size: file.size },
    }),

  listBanners: (slug) => apiRequest('GET', `${live(slug)}/banners`),
  createBanner: (slug, fields) => apiRequest('POST', `${live(slug)}/banners`, { body: fields }),
  updateBanner: (slug, id, fields) =>
    apiRequest('PATCH', `${live(slug)}/banners/${segment(id)}`, { body: fields }),
  deleteBanner: (slug, id) => apiRequest('DELETE', `${live(slug)}/banners/${segment(id)}`),

  listOrders: (slug, params) => apiRequest('GET', `${live(slug)}/orders${query(params)}`),
  orderCounts: (slug, q) => apiRequest('GET', `${live(slug)}/orders/counts${query({ q })}`),
  exportOrders: (slug, params) =>
    apiRequest('GET', `${live(slug)}/orders/export.csv${query(params)}`, { as: 'blob' }),
  getOrder: (slug, code) => apiRequest('GET', `${live(slug)}/orders/${segment(code)}`),
  updateOrder: (slug, code, fields) =>
    apiRequest('PATCH', `${live(slug)}/orders/${segment(code)}`, { body: fields }),
  listManagers: () => apiRequest('GET', '/accounts'),

  dashboard: (slug) => apiRequest('GET', `${live(slug)}/dashboard`),
};
