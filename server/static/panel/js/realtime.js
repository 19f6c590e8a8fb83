/**
 * The panel's socket: the shared RealtimeClient plus the manager `auth` message, and a
 * `follow` helper that loads a screen's state over HTTP without losing events.
 */

import { RealtimeClient } from '/static/js/realtime.js';
import { endSession, getAccessToken, refreshTokens } from './session.js';

const CLOSE_UNAUTHORIZED = 4001;
const CLOSE_FORBIDDEN = 4003;
// How long `follow` waits for the server's `subscribed` before it loads anyway.
const SUBSCRIBE_WAIT_MS = 3000;

/**
 * RealtimeClient that sends `{"op": "auth", "token"}` as the first message of every
 * connection, with the access token current at that moment. On close code 4001 it
 * refreshes the token and reconnects, and ends the session when the refresh fails.
 * On 4003 it stops and dispatches a `forbidden` event. Also dispatches `subscribed`
 * (`detail.topic`) when the server confirms a subscription.
 */
export class ManagerRealtimeClient extends RealtimeClient {
  _handleOpen(socket) {
    if (socket !== this._socket) {
      return;
    }
    const token = getAccessToken();
    if (!token) {
      this.close();
      endSession('expired');
      return;
    }
    // The server handles a socket's messages in order, so the subscriptions that
    // RealtimeClient sends next are checked against this login.
    socket.send(JSON.stringify({ op: 'auth', token }));
    super._handleOpen(socket);
  }

  _handleSubscribed(message) {
    super._handleSubscribed(message);
    this.dispatchEvent(new CustomEvent('subscribed', { detail: { topic: message.topic } }));
  }

  _handleMessage(socket, event) {
    if (socket === this._socket && typeof event.data === 'string' && event.data.includes('"authenticated"')) {
      try {
        if (JSON.parse(event.data).op === 'authenticated') {
          return;
        }
      } catch {
        // Not JSON: RealtimeClient logs it.
      }
    }
    super._handleMessage(socket, event);
  }

  _handleClose(socket, event) {
    if (socket !== this._socket || this._closed) {
      super._handleClose(socket, event);
      return;
    }
    if (event.code === CLOSE_FORBIDDEN) {
      console.warn('realtime: manager socket closed as not allowed', event.reason);
      this.close();
      this.dispatchEvent(new CustomEvent('forbidden', { detail: { reason: event.reason } }));
      return;
    }
    if (event.code !== CLOSE_UNAUTHORIZED) {
      super._handleClose(socket, event);
      return;
    }
    console.info('realtime: access token rejected, refreshing it', event.reason);
    this._socket = null;
    clearTimeout(this._stableTimer);
    this._setStatus('reconnecting');
    refreshTokens().then(
      () => {
        if (!this._closed && this._reconnectTimer === null) {
          // Backoff, so a token the server keeps rejecting does not loop at full speed.
          this._scheduleReconnect();
        }
      },
      (error) => {
        if (error.status === 0 || error.status >= 500) {
          this._scheduleReconnect();
          return;
        }
        this.close();
        endSession('expired');
      },
    );
  }
}

/**
 * Subscribes `client` to `topics` and fans events out to listeners, so several screens
 * can follow the same topic over one subscription (the server rejects a second
 * subscribe to a topic the socket already follows).
 */
export class TopicHub {
  constructor(client) {
    this.client = client;
    // topic -> {listeners: Set, subscribed: boolean, waiters: []}
    this.topics = new Map();
    client.addEventListener('subscribed', (event) => {
      const entry = this.topics.get(event.detail.topic);
      if (entry) {
        entry.subscribed = true;
        entry.waiters.splice(0).forEach((resolve) => resolve());
      }
    });
    client.addEventListener('status', (event) => {
      if (event.detail.status !== 'open') {
        for (const entry of this.topics.values()) {
          entry.subscribed = false;
        }
      }
    });
  }

  /**
   * Adds `listener` for `topic`: it receives each event message, and
   * `{type: 'reset', topic}` when the server dropped missed events. Returns a function
   * that removes the listener.
   */
  listen(topic, listener) {
    let entry = this.topics.get(topic);
    if (!entry) {
      entry = { listeners: new Set(), subscribed: false, waiters: [] };
      this.topics.set(topic, entry);
      this.client.subscribe(
        topic,
        {},
        (event) => this.dispatch(topic, event),
        (resetTopic, position) => this.handleReset(resetTopic, position),
      );
    }
    entry.listeners.add(listener);
    return () => {
      entry.listeners.delete(listener);
      if (entry.listeners.size === 0 && this.topics.get(topic) === entry) {
        this.topics.delete(topic);
        this.client.unsubscribe(topic);
      }
    };
  }

  /** Resolves once `topic` is subscribed, or after `timeoutMs` (e.g. while offline). */
  whenSubscribed(topic, timeoutMs = SUBSCRIBE_WAIT_MS) {
    const entry = this.topics.get(topic);
    if (!entry || entry.subscribed) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      entry.waiters.push(resolve);
      setTimeout(resolve, timeoutMs);
    });
  }

  dispatch(topic, event) {
    for (const listener of [...(this.topics.get(topic)?.listeners ?? [])]) {
      try {
        listener(event);
      } catch (error) {
        console.error('panel: event listener failed', topic, event.type, error);
      }
    }
  }

  handleReset(topic, position) {
    const entry = this.topics.get(topic);
    if (!entry) {
      return;
    }
    entry.subscribed = false;
    // Follow again from the reset's position; listeners reload their state over HTTP.
    this.client.subscribe(topic, position);
    this.dispatch(topic, { type: 'reset', topic });
  }
}

/**
 * Follows `topics` for one screen: subscribes, waits for the subscriptions, runs
 * `load()` (the HTTP fetch of the screen's state), then applies with `apply(event)`
 * every event that arrived during the load, and later ones as they come. A `reset`
 * on any topic runs the same sequence again. `apply` must tolerate events that the
 * loaded state already contains (compare versions, replace by id).
 * Returns `{ready, stop}`: `ready` settles with the first load.
 */
export function follow(hub, topics, { load, apply, onLoadError = () => {} }) {
  let buffer = [];
  let loading = false;
  let stopped = false;

  const handle = (event) => {
    if (stopped) {
      return;
    }
    if (event.type === 'reset') {
      reload();
      return;
    }
    if (loading) {
      buffer.push(event);
    } else {
      apply(event);
    }
  };

  const reload = async () => {
    if (loading) {
      return;
    }
    loading = true;
    buffer = [];
    try {
      await Promise.all(topics.map((topic) => hub.whenSubscribed(topic)));
      if (stopped) {
        return;
      }
      await load();
    } catch (error) {
      onLoadError(error);
    } finally {
      loading = false;
    }
    if (stopped) {
      return;
    }
    const pending = buffer;
    buffer = [];
    pending.forEach((event) => apply(event));
  };

  const removers = topics.map((topic) => hub.listen(topic, handle));
  const ready = reload();
  return {
    ready,
    reload,
    stop() {
      stopped = true;
      removers.forEach((remove) => remove());
    },
  };
}
