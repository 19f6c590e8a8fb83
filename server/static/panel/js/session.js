/**
 * The manager's login: tokens kept in sessionStorage (one tab, gone when it closes),
 * refreshed shortly before the access token expires.
 *
 * Refresh tokens rotate: each works once, and presenting a used one revokes the whole
 * login on the server. So at most one refresh runs at a time, and every caller that
 * needs a fresh token waits for that one.
 */

const STORAGE_KEY = 'vitrine.panel.session';
// Refresh this long before the access token expires, so requests in flight still
// carry a valid token.
const REFRESH_MARGIN_MS = 60_000;

export const sessionEvents = new EventTarget();

let current = load();
let refreshInFlight = null;
let refreshTimer = null;

function load() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null');
    return stored && stored.access_token && stored.refresh_token ? stored : null;
  } catch {
    return null;
  }
}

/** Returns the stored login `{access_token, refresh_token, expires_at, manager}` or null. */
export function getSession() {
  return current;
}

export function getManager() {
  return current?.manager ?? null;
}

export function getAccessToken() {
  return current?.access_token ?? null;
}

/** Stores a login or refresh response and schedules the next refresh. */
export function storeTokens(response) {
  current = {
    access_token: response.access_token,
    refresh_token: response.refresh_token,
    // expires_in is in seconds.
    expires_at: Date.now() + Number(response.expires_in) * 1000,
    manager: response.manager ?? current?.manager ?? null,
  };
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(current));
  scheduleRefresh();
}

/** Clears the login and notifies listeners (`ended` event, `detail.reason`). */
export function endSession(reason = 'signed_out') {
  const hadSession = current !== null;
  current = null;
  clearTimeout(refreshTimer);
  sessionStorage.removeItem(STORAGE_KEY);
  if (hadSession) {
    sessionEvents.dispatchEvent(new CustomEvent('ended', { detail: { reason } }));
  }
}

/** Returns whether the access token expires within the refresh margin. */
export function accessTokenExpiresSoon() {
  return current !== null && current.expires_at - Date.now() < REFRESH_MARGIN_MS;
}

export function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!current) {
    return;
  }
  const delay = Math.max(0, current.expires_at - Date.now() - REFRESH_MARGIN_MS);
  refreshTimer = setTimeout(() => {
    refreshTokens().catch((error) => console.warn('panel: scheduled token refresh failed', error));
  }, delay);
}

/**
 * Exchanges the refresh token for new tokens. Concurrent callers share one request.
 * Resolves with the new access token, or rejects with the response's error. A 4xx
 * ends the session, because the refresh token is used, expired or revoked. A network
 * error or a 5xx keeps it, so a later call can try again.
 */
export function refreshTokens() {
  if (refreshInFlight) {
    return refreshInFlight;
  }
  if (!current) {
    return Promise.reject(new Error('not signed in'));
  }
  const refreshToken = current.refresh_token;
  refreshInFlight = (async () => {
    let response;
    try {
      response = await fetch('/api/v1/manager/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ refresh_token: refreshToken }),
      });
    } catch (error) {
      throw Object.assign(new Error('Could not reach the server to refresh the login.'), { status: 0 });
    }
    const payload = await response.json().catch(() => null);
    if (!response.ok) {
      const message = payload?.error?.message || `Token refresh failed with HTTP ${response.status}.`;
      if (response.status >= 400 && response.status < 500) {
        endSession('expired');
      }
      throw Object.assign(new Error(message), { status: response.status });
    }
    storeTokens(payload);
    return current.access_token;
  })();
  refreshInFlight.finally(() => {
    refreshInFlight = null;
  }).catch(() => {});
  return refreshInFlight;
}

if (current) {
  scheduleRefresh();
}
