/**
 * WebSocket client for the Vitrine `/ws` endpoint. One socket carries every topic.
 *
 * For each topic the client stores the last epoch and offset it has seen, and after a
 * reconnect it subscribes again from there, so the server replays the missed events.
 * Dependency-free so the storefront and the manager panel can both import it.
 */

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 20_000;
// A connection that stays open this long counts as healthy, so the next failure
// starts the backoff from the base delay again.
export const STABLE_CONNECTION_MS = 10_000;

const SOCKET_OPEN = 1; // WebSocket.OPEN, written out so tests can pass a fake socket class

/**
 * Returns the delay in milliseconds before reconnect number `attempt` (0-based):
 * exponential backoff with full jitter, random(0, min(cap, base * 2^attempt)).
 */
export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return random() * ceiling;
}

/** Returns the `/ws` URL on the page's own origin, `wss:` when the page uses https. */
export function defaultSocketUrl(pageLocation = globalThis.location) {
  const scheme = pageLocation.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${pageLocation.host}/ws`;
}

/**
 * Topic subscriptions over one reconnecting WebSocket.
 *
 * Dispatches `status` events whose `detail.status` is 'connecting', 'open',
 * 'reconnecting' or 'closed' (the same value as `client.status`), and `error` events
 * whose `detail` is a server `{"op": "error"}` message.
 */
export class RealtimeClient extends EventTarget {
  /**
   * @param {string} url the socket URL, by default `/ws` on the page's origin
   * @param {{WebSocket?: Function, random?: () => number}} options test seams for the
   *   socket class and the jitter source
   */
  constructor(url = defaultSocketUrl(), options = {}) {
    super();
    this.url = url;
    this.status = 'connecting';
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._random = options.random ?? Math.random;
    // topic -> {epoch, offset, onEvent, onReset, awaitingReply, stale}
    this._topics = new Map();
    this._socket = null;
    this._attempt = 0;
    this._reconnectTimer = null;
    this._stableTimer = null;
    this._closed = false;
    this._handleOnline = () => this._reconnectNowIfWaiting();
    globalThis.addEventListener?.('online', this._handleOnline);
    this._connect();
  }

  /**
   * Subscribes to `topic` from `{epoch, offset}`, or from now on when they are omitted.
   *
   * `onEvent(event)` receives each event message in the order the server sends them,
   * minus duplicates (an offset not above the last one seen). `onReset(topic,
   * {epoch, offset})` runs when the server no longer has the missed events: the caller
   * refetches its state over HTTP and calls `subscribe` again with the epoch and offset
   * of that state. Until then the topic's events are dropped. Calling `subscribe` for a
   * topic that is already subscribed replaces its position and keeps its callbacks
   * unless new ones are given.
   */
  subscribe(topic, position = {}, onEvent = undefined, onReset = undefined) {
    const previous = this._topics.get(topic);
    const entry = {
      epoch: position.epoch ?? null,
      offset: position.offset ?? null,
      onEvent: onEvent ?? previous?.onEvent ?? (() => {}),
      onReset: onReset ?? previous?.onReset ?? (() => {}),
      awaitingReply: true,
      stale: false,
    };
    this._topics.set(topic, entry);
    this._sendSubscribe(topic, entry);
  }

  unsubscribe(topic) {
    if (this._topics.delete(topic)) {
      this._send({ op: 'unsubscribe', topic });
    }
  }

  /** Closes the socket for good: no reconnects and no further callbacks. */
  close() {
    this._closed = true;
    clearTimeout(this._reconnectTimer);
    clearTimeout(this._stableTimer);
    this._reconnectTimer = null;
    globalThis.removeEventListener?.('online', this._handleOnline);
    const socket = this._socket;
    this._socket = null;
    socket?.close(1000, 'client closed');
    this._setStatus('closed');
  }

  _connect() {
    this._reconnectTimer = null;
    if (this._closed) {
      return;
    }
    let socket;
    try {
      socket = new this._WebSocket(this.url);
    } catch (error) {
      console.error('realtime: cannot open WebSocket', this.url, error);
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    socket.addEventListener('open', () => this._handleOpen(socket));
    socket.addEventListener('message', (event) => this._handleMessage(socket, event));
    socket.addEventListener('close', (event) => this._handleClose(socket, event));
  }

  _handleOpen(socket) {
    if (socket !== this._socket) {
      return;
    }
    this._setStatus('open');
    this._stableTimer = setTimeout(() => {
      this._attempt = 0;
    }, STABLE_CONNECTION_MS);
    for (const [topic, entry] of this._topics) {
      // A stale topic waits for the page to refetch its state and subscribe again.
      if (!entry.stale) {
        entry.awaitingReply = true;
        this._sendSubscribe(topic, entry);
      }
    }
  }

  _handleMessage(socket, event) {
    if (socket !== this._socket) {
      return;
    }
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (error) {
      console.warn('realtime: ignored a message that is not JSON', error);
      return;
    }
    switch (message.op) {
      case 'subscribed':
        this._handleSubscribed(message);
        break;
      case 'reset':
        this._handleReset(message);
        break;
      case 'reconnect':
        this._scheduleAdvisedReconnect(message.delay_ms);
        break;
      case 'error':
        console.warn('realtime: server error', message.topic, message.code, message.message);
        this.dispatchEvent(new CustomEvent('error', { detail: message }));
        break;
      case undefined:
        this._handleTopicEvent(message);
        break;
      default:
        console.warn('realtime: ignored a message with unknown op', message.op);
    }
  }

  _handleSubscribed(message) {
    const entry = this._topics.get(message.topic);
    if (!entry) {
      return;
    }
    entry.epoch = message.epoch ?? entry.epoch;
    entry.offset = message.offset ?? entry.offset;
    entry.awaitingReply = false;
  }

  _handleReset(message) {
    const entry = this._topics.get(message.topic);
    if (!entry) {
      return;
    }
    entry.epoch = message.epoch ?? null;
    entry.offset = message.offset ?? null;
    entry.stale = true;
    this._runCallback(entry.onReset, message.topic, { epoch: entry.epoch, offset: entry.offset });
  }

  _handleTopicEvent(message) {
    const entry = this._topics.get(message.topic);
    // Until `subscribed` arrives, events may still come from an earlier subscription to
    // the same topic. The server replays them after the reply, so they are dropped here.
    if (!entry || entry.stale || entry.awaitingReply) {
      return;
    }
    if (typeof message.offset === 'number') {
      if (entry.offset !== null && message.offset <= entry.offset) {
        return; // duplicate
      }
      entry.offset = message.offset;
    }
    this._runCallback(entry.onEvent, message);
  }

  _handleClose(socket, event) {
    if (socket !== this._socket) {
      return;
    }
    this._socket = null;
    clearTimeout(this._stableTimer);
    if (this._closed) {
      return;
    }
    // Every close that the client did not request reconnects, including 1001 (going
    // away), 1012 (service restart) and 1013 (try again later).
    console.info('realtime: socket closed, reconnecting', event.code, event.reason);
    this._setStatus('reconnecting');
    // A reconnect advised by the server may already be scheduled.
    if (this._reconnectTimer === null) {
      this._scheduleReconnect();
    }
  }

  _scheduleReconnect() {
    const delay = backoffDelay(this._attempt, this._random);
    this._attempt += 1;
    this._reconnectTimer = setTimeout(() => this._connect(), delay);
  }

  /**
   * Handles `{"op": "reconnect", "delay_ms": N}`, sent before a server restart: waits
   * N milliseconds, which the server picked at random for this socket so that the
   * clients of a restarting process come back spread out, then replaces the socket.
   */
  _scheduleAdvisedReconnect(delayMs) {
    const delay = Math.max(0, Number(delayMs) || 0);
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = setTimeout(() => {
      const socket = this._socket;
      this._socket = null;
      clearTimeout(this._stableTimer);
      socket?.close(1000, 'reconnect advised by server');
      this._setStatus('reconnecting');
      this._connect();
    }, delay);
  }

  _reconnectNowIfWaiting() {
    if (this._closed || this._socket !== null || this._reconnectTimer === null) {
      return;
    }
    clearTimeout(this._reconnectTimer);
    this._connect();
  }

  _sendSubscribe(topic, entry) {
    const message = { op: 'subscribe', topic };
    if (entry.epoch !== null && entry.offset !== null) {
      message.epoch = entry.epoch;
      message.offset = entry.offset;
    }
    this._send(message);
  }

  _send(message) {
    if (this._socket?.readyState === SOCKET_OPEN) {
      this._socket.send(JSON.stringify(message));
    }
  }

  _setStatus(status) {
    if (status === this.status) {
      return;
    }
    this.status = status;
    this.dispatchEvent(new CustomEvent('status', { detail: { status } }));
  }

  _runCallback(callback, ...args) {
    try {
      callback(...args);
    } catch (error) {
      console.error('realtime: topic callback failed', error);
    }
  }
}
